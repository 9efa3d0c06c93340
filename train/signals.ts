/**
 * Graceful stops: SIGINT or SIGTERM asks a training loop to finish its current step, write a checkpoint
 * and return; a second SIGINT exits at once (status 130) without a checkpoint.
 * @module
 */

/** The signals a loop stops on. */
export const STOP_SIGNALS = ["SIGINT", "SIGTERM"] as const;

/** Exit status of a second SIGINT (128 + 2, as a shell reports it). */
export const SECOND_SIGINT_EXIT = 130;

/** Listens for SIGINT/SIGTERM while installed; {@link signal} names the first one received. */
export class StopSignals implements Disposable {
  /** The first stop signal received, or null. */
  signal: string | null = null;
  #listeners: [Deno.Signal, () => void][] = [];

  /** Installs the listeners (quiet: no message on the first signal). Unsupported signals are skipped. */
  constructor(options: { quiet?: boolean } = {}) {
    for (const sig of STOP_SIGNALS) {
      const fn = () => {
        if (this.signal && sig === "SIGINT") {
          console.error("\nsecond SIGINT: exiting without a checkpoint");
          Deno.exit(SECOND_SIGINT_EXIT);
        }
        this.signal = sig;
        if (!options.quiet) console.error(`\n${sig}: finishing the current step, then writing a checkpoint…`);
      };
      try {
        Deno.addSignalListener(sig, fn);
        this.#listeners.push([sig, fn]);
      } catch { /* signal unsupported on this platform */ }
    }
  }

  /** Removes the listeners. Safe to call twice. */
  dispose(): void {
    for (const [sig, fn] of this.#listeners.splice(0)) {
      try {
        Deno.removeSignalListener(sig, fn);
      } catch { /* ignore */ }
    }
  }

  /** `using signals = new StopSignals()`. */
  [Symbol.dispose](): void {
    this.dispose();
  }
}
