/**
 * A training-step monitor kept on the GPU: after each step one tiny dispatch counts the step, stores the
 * step's scalars (the loss first, then e.g. the batch accuracy) in a ring buffer of `ring` steps and
 * remembers the first step whose loss is not finite. A loop reads it back only when it logs (one
 * readback for up to `ring` steps), so a training step stays one submit with nothing read back.
 * @module
 */
import { gpu } from "../gpu.ts";
import { read, runKernel, write } from "../program.ts";
import { empty, fmtShape, ShapeError, type Tensor, untrack, writeTensor } from "../tensor.ts";
import { monitorBody, monitorWords } from "../../shaders/monitor.ts";

/** One readback of a {@link StepMonitor}. */
export interface MonitorSnapshot {
  /** First step (1-based count) whose loss was not finite; 0 when none. */
  firstBad: number;
  /** Steps recorded so far (including the count it was started from). */
  counter: number;
  /** The ring of each value: `values[k][(step − 1) % ring]` is value k of `step`. */
  values: Float32Array[];
}

/** Ring buffer of per-step scalars on the GPU (see the module doc). */
export class StepMonitor {
  /** Steps kept between two readbacks. */
  readonly ring: number;
  /** Scalars recorded per step. */
  readonly slots: number;
  /** The state buffer, u32 `[firstBad, counter, ring × slots]`. */
  readonly state: Tensor;

  /**
   * A monitor for `slots` scalars per step (the first is the loss) over a ring of `ring` steps, its
   * step counter starting at `startStep` (e.g. the step a resumed run continues from).
   */
  constructor(ring: number, slots = 1, startStep = 0) {
    if (!Number.isInteger(ring) || ring < 1 || !Number.isInteger(slots) || slots < 1) {
      throw new ShapeError("StepMonitor", `ring ${ring} and slots ${slots} must be positive integers`);
    }
    this.ring = ring;
    this.slots = slots;
    const words = monitorWords({ ring, slots });
    this.state = untrack(empty([words], "u32"));
    writeTensor(this.state, new Uint32Array(words).fill(startStep, 1, 2));
  }

  /**
   * Records one step: `values[0]` is the loss (non-finite → remembered), the others are stored beside
   * it; each is a scalar f32 tensor (its first element is read). Fewer values than slots store 0.
   */
  record(values: readonly Tensor[]): void {
    if (values.length < 1 || values.length > this.slots) {
      throw new ShapeError("StepMonitor.record", `${values.length} values for ${this.slots} slots`);
    }
    for (const v of values) {
      if (v.dtype !== "f32" || v.size < 1) {
        throw new ShapeError(
          "StepMonitor.record",
          `values must be f32 scalars, got ${v.dtype}${fmtShape(v.shape)}`,
        );
      }
    }
    runKernel({
      name: "train.monitor",
      bindings: [...values.map((v, k) => read(`v${k}`, v)), write("state", this.state, "array<u32>")],
      body: monitorBody({ ring: this.ring, values: values.length, slots: this.slots }),
      workgroups: [1, 1, 1],
    });
  }

  /** Reads the state back (one readback; submits what is recorded). */
  async read(): Promise<MonitorSnapshot> {
    const words = monitorWords(this);
    const bytes = await gpu().read(this.state.range);
    const u = new Uint32Array(bytes, 0, words);
    const f = new Float32Array(bytes, 0, words);
    const values = Array.from(
      { length: this.slots },
      (_, k) => f.slice(2 + k * this.ring, 2 + (k + 1) * this.ring),
    );
    return { firstBad: u[0], counter: u[1], values };
  }

  /** Frees the state buffer. */
  dispose(): void {
    this.state.dispose();
  }
}
