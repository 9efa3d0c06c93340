/**
 * SGD with momentum, weight decay, dampening and Nesterov (PyTorch's update order), fused over all
 * parameters.
 *
 * The constructor packs every parameter into one arena buffer (slots at multiples of 64 floats, i.e.
 * 256-byte aligned offsets), copies its values there and rebinds the parameter as a view into the
 * arena; gradients get a second arena (each parameter's `gradSink` is a view, so autograd accumulates
 * there and `zeroGrad()` is one clear), momentum buffers a third. `step()` is then ONE dispatch over
 * the whole arena; alignment gaps hold zeros and stay zero.
 *
 * The learning rate lives in a 16-byte storage buffer `(lr, firstStep, 0, 0)` written with
 * `gpu().write` only when it changes, so a scheduled rate never compiles a new pipeline and never
 * grows the uniform cache (`gpu().uniform` caches by content: one buffer per distinct rate). The write
 * is recorded in order with the step's dispatches (a staged copy), so it costs no extra submit.
 *
 * @module
 */
import { gpu } from "../gpu.ts";
import { fmtShape, type GradSink, ShapeError, Storage, Tensor, untrack } from "../tensor.ts";
import { grid1d } from "../../shaders/common.ts";
import { sgdStepBody } from "../../shaders/optim.ts";
import { read, runKernel, write } from "../program.ts";
import { project, type ProjectionKind } from "./projection.ts";

/** Slot alignment in floats (256 bytes, the storage-binding offset alignment). */
export const ARENA_ALIGN = 64;

/** A projection applied after each update to some parameters (the toy problems). */
export interface ProjectionSpec {
  /** `'sphere'`: rows renormalised to `radius`; `'ball'`: rows longer than `radius` scaled down. */
  kind: ProjectionKind;
  /** Radius ρ. */
  radius: number;
  /** Parameters to project (rows along the last dimension); default: all of them. */
  params?: Tensor[];
}

/** Options of {@link SGD}. */
export interface SGDOptions {
  /** Learning rate used when `step()` gets none. */
  lr: number;
  /** Momentum μ (default 0: plain SGD, no momentum buffers). */
  momentum?: number;
  /** Weight decay added to the gradient before momentum: g ← g + wd·p (default 0). */
  weightDecay?: number;
  /** Nesterov momentum (default false). */
  nesterov?: boolean;
  /** Dampening of the gradient in the momentum update after the first step (default 0). */
  dampening?: number;
  /** Projections applied after each update (e.g. points kept on a sphere). */
  project?: ProjectionSpec | ProjectionSpec[];
}

/** Checkpointable optimiser state (see {@link SGD.stateDict}). */
export interface SGDState {
  /** Number of steps taken. */
  step: number;
  /** Momentum buffer of each parameter, in constructor order; null without momentum. */
  momentum: Float32Array[] | null;
}

interface Slot {
  param: Tensor;
  offset: number;
}

/** A storage-owning arena of `floats` floats, zero-filled. */
function arena(floats: number): Storage {
  const range = gpu().allocate(floats * 4, false);
  const storage = new Storage({ ...range, size: floats * 4 }, true);
  gpu().clear(storage.range);
  return storage;
}

/** A parameter's gradient as a view of the optimiser's gradient arena (see `GradSink`). */
class ArenaGradSink implements GradSink {
  /** Zeroed by `zeroGrad()` and not yet written. */
  fresh = false;
  constructor(readonly grad: Tensor) {}
  takeFresh(): Tensor | null {
    if (!this.fresh) return null;
    this.fresh = false;
    return this.grad;
  }
  markUsed(): void {
    this.fresh = false;
  }
}

/**
 * Stochastic gradient descent, PyTorch semantics, one fused dispatch per step:
 * `g ← grad + wd·p; buf ← μ·buf + (1−dampening)·g (first step: buf ← g); g ← nesterov ? g + μ·buf :
 * buf; p ← p − lr·g`.
 *
 * Parameters become views into the optimiser's arena (a parameter belongs to one optimiser at a
 * time; other views of its old storage keep the old values). After `dispose()` the parameters keep
 * their values (their views keep the arena alive) and gradients go back to per-tensor `grad`.
 */
export class SGD {
  /** The parameters, in constructor order. */
  readonly params: readonly Tensor[];
  /** Default learning rate of `step()`. */
  lr: number;
  /** Momentum μ (0: plain SGD). */
  readonly momentum: number;
  /** Weight decay (added to the gradient before momentum). */
  readonly weightDecay: number;
  /** Whether Nesterov momentum is used. */
  readonly nesterov: boolean;
  /** Dampening of the gradient in the momentum update. */
  readonly dampening: number;
  /** Momentum buffer views (same shapes as the parameters), empty without momentum. */
  readonly momentumBuffers: readonly Tensor[];
  #slots: Slot[];
  #sinks: ArenaGradSink[] = [];
  #floats: number;
  #params: Storage;
  #grads: Storage;
  #bufs: Storage | null;
  #hyper: Storage;
  #written: [number, number] | null = null;
  #steps = 0;
  #projections: { kind: ProjectionKind; radius: number; params: Tensor[] }[];
  #disposed = false;

  /** Packs `params` into the arenas (see the class description); they must be f32 and distinct. */
  constructor(params: Tensor[], options: SGDOptions) {
    const { lr, momentum = 0, weightDecay = 0, nesterov = false, dampening = 0 } = options;
    if (params.length === 0) throw new ShapeError("SGD", "no parameters");
    if (new Set(params).size !== params.length) throw new ShapeError("SGD", "a parameter is listed twice");
    for (const p of params) {
      if (p.dtype !== "f32") throw new ShapeError("SGD", `parameter ${p} must be f32`);
      if (p.disposed) throw new ShapeError("SGD", `parameter #${p.id} ${fmtShape(p.shape)} was disposed`);
    }
    for (const [name, v] of Object.entries({ lr, momentum, weightDecay, dampening })) {
      if (!Number.isFinite(v) || v < 0) {
        throw new ShapeError("SGD", `${name} must be finite and ≥ 0, got ${v}`);
      }
    }
    if (nesterov && (momentum === 0 || dampening !== 0)) {
      throw new ShapeError("SGD", "Nesterov momentum requires a momentum and zero dampening");
    }
    this.params = [...params];
    this.lr = lr;
    this.momentum = momentum;
    this.weightDecay = weightDecay;
    this.nesterov = nesterov;
    this.dampening = dampening;

    let floats = 0;
    this.#slots = params.map((param) => {
      const slot = { param, offset: floats };
      floats += Math.ceil(param.size / ARENA_ALIGN) * ARENA_ALIGN;
      return slot;
    });
    this.#floats = Math.max(floats, ARENA_ALIGN);
    const g = gpu();
    this.#params = arena(this.#floats);
    this.#grads = arena(this.#floats);
    this.#bufs = momentum !== 0 ? arena(this.#floats) : null;
    const buffers: Tensor[] = [];
    for (const { param, offset } of this.#slots) {
      const view = (storage: Storage) => untrack(new Tensor(param.shape, "f32", storage.retain(), offset));
      if (param.size > 0) {
        g.copy(param.range, { ...param.range, buffer: this.#params.range.buffer, offset: offset * 4 });
      }
      param.rebind(this.#params.retain(), offset);
      const slot = view(this.#grads);
      const previous = param.grad;
      if (previous && param.size > 0) g.copy(previous.range, slot.range);
      param.grad = undefined;
      param.gradSink?.grad.dispose();
      const sink = new ArenaGradSink(slot);
      this.#sinks.push(sink);
      param.gradSink = sink;
      if (this.#bufs) buffers.push(view(this.#bufs));
    }
    this.momentumBuffers = buffers;
    const hyper = g.allocate(16, true);
    this.#hyper = new Storage({ ...hyper, size: 16 }, true);

    const specs = options.project === undefined
      ? []
      : Array.isArray(options.project)
      ? options.project
      : [options.project];
    this.#projections = specs.map((s) => {
      const ps = s.params ?? [...params];
      for (const p of ps) {
        if (!params.includes(p)) throw new ShapeError("SGD", `projected parameter ${p} is not optimised`);
      }
      if (!(s.radius > 0)) throw new ShapeError("SGD", `projection radius must be positive, got ${s.radius}`);
      return { kind: s.kind, radius: s.radius, params: ps };
    });
  }

  /** Number of steps taken (restored by `loadStateDict`). */
  get steps(): number {
    return this.#steps;
  }

  /** The whole parameter arena as a flat view (checkpoints, norms); alignment gaps hold zeros. */
  arenaView(which: "params" | "grads" | "momentum" = "params"): Tensor {
    this.#checkAlive();
    const storage = which === "params" ? this.#params : which === "grads" ? this.#grads : this.#bufs;
    if (!storage) throw new ShapeError("SGD.arenaView", "no momentum buffers (momentum is 0)");
    return new Tensor([this.#floats], "f32", storage.retain(), 0);
  }

  /** One fused update of every parameter with learning rate `lr` (default `this.lr`), then projections. */
  step(lr: number = this.lr): void {
    this.#checkAlive();
    if (!Number.isFinite(lr) || lr < 0) {
      throw new ShapeError("SGD.step", `learning rate must be ≥ 0, got ${lr}`);
    }
    const first = this.#bufs !== null && this.#steps === 0 ? 1 : 0;
    const value: [number, number] = [Math.fround(lr), first];
    const g = gpu();
    if (!this.#written || this.#written[0] !== value[0] || this.#written[1] !== value[1]) {
      g.write(this.#hyper.range, new Float32Array([value[0], first, 0, 0]));
      this.#written = value;
    }
    const body = sgdStepBody(this.#floats / 4, {
      momentum: this.momentum,
      weightDecay: this.weightDecay,
      dampening: this.dampening,
      nesterov: this.nesterov,
    });
    const V4 = "array<vec4<f32>>";
    const bindings = [
      write("p", this.#params.range, V4),
      read("grad", this.#grads.range, V4),
      read("hyper", this.#hyper.range),
    ];
    if (this.#bufs) bindings.push(write("buf", this.#bufs.range, V4));
    runKernel({ name: "sgd.step", bindings, body, workgroups: grid1d(this.#floats / 4) });
    this.#steps++;
    for (const p of this.#projections) for (const t of p.params) project(t, p.kind, p.radius);
  }

  /** Zeroes every gradient (one clear of the gradient arena). */
  zeroGrad(): void {
    this.#checkAlive();
    gpu().clear(this.#grads.range);
    for (const sink of this.#sinks) sink.fresh = true;
  }

  /** The step count and momentum buffers, read back (parameters are checkpointed by themselves). */
  async stateDict(): Promise<SGDState> {
    this.#checkAlive();
    const momentum = this.#bufs ? await Promise.all(this.momentumBuffers.map((b) => b.toArray())) : null;
    return { step: this.#steps, momentum: momentum as Float32Array[] | null };
  }

  /** Restores a state saved by `stateDict()` (same parameters in the same order). */
  loadStateDict(state: SGDState): void {
    this.#checkAlive();
    if (!Number.isInteger(state.step) || state.step < 0) {
      throw new ShapeError("SGD.loadStateDict", `bad step count ${state.step}`);
    }
    if ((state.momentum === null) !== (this.#bufs === null)) {
      throw new ShapeError("SGD.loadStateDict", `momentum buffers ${state.momentum ? "given" : "missing"}`);
    }
    if (state.momentum) {
      if (state.momentum.length !== this.params.length) {
        throw new ShapeError(
          "SGD.loadStateDict",
          `${state.momentum.length} buffers for ${this.params.length} parameters`,
        );
      }
      state.momentum.forEach((m, k) => {
        const b = this.momentumBuffers[k];
        if (m.length !== b.size) {
          throw new ShapeError(
            "SGD.loadStateDict",
            `buffer ${k} has ${m.length} values for ${fmtShape(b.shape)}`,
          );
        }
      });
      state.momentum.forEach((m, k) => {
        const b = this.momentumBuffers[k];
        if (b.size > 0) gpu().write({ ...b.range, size: b.size * 4 }, Float32Array.from(m));
      });
    }
    this.#steps = state.step;
  }

  /**
   * Releases the gradient and momentum arenas. Parameters keep their values (they stay views of the
   * parameter arena) and accumulate gradients in `grad` again.
   */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const { param } of this.#slots) {
      param.gradSink?.grad.dispose();
      param.gradSink = undefined;
    }
    for (const b of this.momentumBuffers) b.dispose();
    this.#params.release();
    this.#grads.release();
    this.#bufs?.release();
    this.#hyper.release();
  }

  #checkAlive(): void {
    if (this.#disposed) throw new ShapeError("SGD", "optimiser was disposed");
  }
}
