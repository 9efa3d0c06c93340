/**
 * Bounded run-ahead for long loops: the host records step k+1 while the GPU runs step k, but never
 * gets further ahead than that, and the loop yields to the event loop (so signals are handled).
 */
import { gpu } from "./gpu.ts";

/** Keeps at most two submitted steps in flight. */
export class Throttle {
  #pending: Promise<unknown> | null = null;

  /** Submits what is recorded, then waits for the step before it to finish. */
  async tick(): Promise<void> {
    gpu().flush();
    const done = gpu().device.queue.onSubmittedWorkDone();
    if (this.#pending) await this.#pending;
    this.#pending = done;
  }

  /** Waits for everything submitted through `tick()`. */
  async drain(): Promise<void> {
    if (this.#pending) await this.#pending;
    this.#pending = null;
  }
}
