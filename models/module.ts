/**
 * Module: a tree of named parameters, buffers and child modules, PyTorch style.
 *
 * Names are dotted paths (`layer1.0.conv1.weight`, `bn1.running_mean`) so state dicts line up with
 * PyTorch checkpoints of the same architecture. Parameters are leaf tensors with `requiresGrad` set;
 * buffers (BatchNorm running statistics, fixed classifier weights) travel in the state dict but are
 * not handed to optimisers.
 *
 * @module
 */
import { fmtShape, type Tensor, untrack, writeTensor } from "../engine/tensor.ts";

/** One entry of a state dict: a shape and its float32 values (row-major). */
export interface StateEntry {
  /** Tensor shape. */
  shape: number[];
  /** Values in row-major order. */
  data: Float32Array;
}

/** A state dict: every parameter and buffer of a module by its dotted name. */
export type StateDict = Record<string, StateEntry>;

/** Options of {@link Module.loadStateDict}. */
export interface LoadStateDictOptions {
  /** When true (default) missing and unexpected keys are errors; when false they are ignored. */
  strict?: boolean;
}

/** Thrown by {@link Module.loadStateDict}: names every missing/unexpected key and shape mismatch. */
export class StateDictError extends Error {
  /** An error with the offending keys. */
  constructor(
    message: string,
    /** Keys the module has and the dict lacks. */
    readonly missing: string[],
    /** Keys the dict has and the module lacks. */
    readonly unexpected: string[],
    /** `key: expected [..], got [..]` lines. */
    readonly mismatched: string[],
  ) {
    super(message);
    this.name = "StateDictError";
  }
}

/**
 * Base class of models: registers parameters, buffers and children under names, propagates the
 * training flag, and saves/loads state dicts. Subclasses register everything in their constructor
 * (children after they are fully built, so their tensors get the full dotted names).
 */
export abstract class Module {
  #parameters = new Map<string, Tensor>();
  #buffers = new Map<string, Tensor>();
  #children = new Map<string, Module>();
  #training = true;

  /** True in training mode (BatchNorm uses batch statistics and updates its running statistics). */
  get training(): boolean {
    return this.#training;
  }

  /** Sets training mode (default true) on this module and every descendant; returns this. */
  train(mode = true): this {
    this.#training = mode;
    for (const c of this.#children.values()) c.train(mode);
    return this;
  }

  /** Sets evaluation mode (BatchNorm uses its running statistics) on the whole tree; returns this. */
  eval(): this {
    return this.train(false);
  }

  /**
   * Registers a trainable leaf tensor under `name`: sets `requiresGrad`, its `name`, and removes it
   * from any open scope (the module owns it until `dispose()`). Returns the tensor.
   */
  protected registerParameter(name: string, t: Tensor): Tensor {
    this.#checkName(name);
    t.requiresGrad = true;
    t.name = name;
    untrack(t);
    this.#parameters.set(name, t);
    return t;
  }

  /** Registers a non-trainable tensor (running statistics, fixed weights) under `name`. */
  protected registerBuffer(name: string, t: Tensor): Tensor {
    this.#checkName(name);
    t.requiresGrad = false;
    t.name = name;
    untrack(t);
    this.#buffers.set(name, t);
    return t;
  }

  /** Registers a fully built child module under `name`; its tensors are renamed `name.<path>`. */
  protected registerModule<M extends Module>(name: string, m: M): M {
    this.#checkName(name);
    this.#children.set(name, m);
    for (const [n, t] of m.namedParameters()) t.name = `${name}.${n}`;
    for (const [n, t] of m.namedBuffers()) t.name = `${name}.${n}`;
    m.train(this.#training);
    return m;
  }

  #checkName(name: string): void {
    if (!name || name.includes(".")) throw new Error(`Module: invalid name "${name}" (empty or dotted)`);
    if (this.#parameters.has(name) || this.#buffers.has(name) || this.#children.has(name)) {
      throw new Error(`Module: name "${name}" registered twice`);
    }
  }

  /** Direct children with their names, in registration order. */
  namedChildren(): [string, Module][] {
    return [...this.#children];
  }

  /** Trainable parameters with dotted names: own first, then each child's, in registration order. */
  namedParameters(): [string, Tensor][] {
    const out: [string, Tensor][] = [...this.#parameters];
    for (const [c, m] of this.#children) {
      for (const [n, t] of m.namedParameters()) out.push([`${c}.${n}`, t]);
    }
    return out;
  }

  /** Trainable parameters (what an optimiser takes). */
  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }

  /** Buffers (non-trainable state) with dotted names. */
  namedBuffers(): [string, Tensor][] {
    const out: [string, Tensor][] = [...this.#buffers];
    for (const [c, m] of this.#children) {
      for (const [n, t] of m.namedBuffers()) out.push([`${c}.${n}`, t]);
    }
    return out;
  }

  /** Buffers (non-trainable state). */
  buffers(): Tensor[] {
    return this.namedBuffers().map(([, t]) => t);
  }

  /** Parameters and buffers in PyTorch `state_dict` order: own parameters, own buffers, then children. */
  namedTensors(): [string, Tensor][] {
    const out: [string, Tensor][] = [...this.#parameters, ...this.#buffers];
    for (const [c, m] of this.#children) {
      for (const [n, t] of m.namedTensors()) out.push([`${c}.${n}`, t]);
    }
    return out;
  }

  /** Number of trainable scalars (buffers do not count). */
  numParameters(): number {
    let n = 0;
    for (const t of this.parameters()) n += t.size;
    return n;
  }

  /** Reads every parameter and buffer back to the host (submits pending work). */
  async stateDict(): Promise<StateDict> {
    const named = this.namedTensors();
    // All readbacks are recorded and submitted before the first wait (one round trip, not one each).
    const values = await Promise.all(named.map(([, t]) => t.toArray()));
    const out: StateDict = {};
    named.forEach(([name, t], i) => out[name] = { shape: [...t.shape], data: Float32Array.from(values[i]) });
    return out;
  }

  /**
   * Overwrites parameters and buffers from `dict`. Checks everything before writing anything: with
   * `strict` (default) missing and unexpected keys are errors, and a shape mismatch is always one.
   * The error lists every offending key with the expected and given shapes.
   */
  loadStateDict(
    dict: Record<string, { shape: readonly number[]; data: ArrayLike<number> }>,
    { strict = true }: LoadStateDictOptions = {},
  ): void {
    const own = new Map(this.namedTensors());
    const missing = [...own.keys()].filter((k) => !(k in dict));
    const unexpected = Object.keys(dict).filter((k) => !own.has(k));
    const mismatched: string[] = [];
    for (const [key, t] of own) {
      const entry = dict[key];
      if (!entry) continue;
      const sameShape = entry.shape.length === t.shape.length &&
        entry.shape.every((d, i) => d === t.shape[i]);
      if (!sameShape) {
        mismatched.push(`${key}: expected ${fmtShape(t.shape)}, got ${fmtShape(entry.shape)}`);
      } else if (entry.data.length !== t.size) {
        mismatched.push(
          `${key}: shape ${fmtShape(t.shape)} needs ${t.size} values, got ${entry.data.length}`,
        );
      }
    }
    const problems: string[] = [];
    if (strict && missing.length) problems.push(`missing keys: ${missing.join(", ")}`);
    if (strict && unexpected.length) problems.push(`unexpected keys: ${unexpected.join(", ")}`);
    if (mismatched.length) problems.push(`shape mismatches: ${mismatched.join("; ")}`);
    if (problems.length) {
      throw new StateDictError(
        `loadStateDict (${this.constructor.name}): ${problems.join(" | ")}`,
        missing,
        unexpected,
        mismatched,
      );
    }
    for (const [key, t] of own) {
      const entry = dict[key];
      if (entry) writeTensor(t, entry.data);
    }
  }

  /** Disposes every parameter (with its gradient) and buffer of the tree. Safe to call twice. */
  dispose(): void {
    for (const t of this.#parameters.values()) t.dispose();
    for (const t of this.#buffers.values()) t.dispose();
    for (const c of this.#children.values()) c.dispose();
  }

  /** `using model = ...` disposes at the end of the block. */
  [Symbol.dispose](): void {
    this.dispose();
  }
}
