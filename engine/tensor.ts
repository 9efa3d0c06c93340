/**
 * Tensor: a shape, a dtype and a range of a GPU buffer, plus its autograd node.
 *
 * Storage is reference counted so views (reshape, parameters packed into an optimiser's arena) share
 * one buffer; `dispose()` drops this tensor's reference and the buffer returns to the pool when the
 * last one goes. Every tensor created inside a `tidy`/`TensorScope` is tracked by it.
 */
import { type BufferRange, gpu } from "./gpu.ts";
// A cycle (autograd and the fill kernel make tensors) that is safe because neither side calls into the other
// while the modules are evaluated, only later, from functions: importing any module of the engine is enough
// for `backward()` and for poisoning.
import { backward, type GradNode } from "./autograd.ts";
import { poisonFill } from "./ops/core.ts";

/** Element types of tensors: f32 for values, i32/u32 for labels and indices. */
export type DType = "f32" | "i32" | "u32";

/** Host-side arrays a tensor reads back into. */
export type TypedArrayFor<D extends DType> = D extends "f32" ? Float32Array
  : D extends "i32" ? Int32Array
  : Uint32Array;

/** A buffer range shared by a tensor and its views. */
export class Storage {
  /** Number of tensors referencing this storage. */
  refs = 1;
  /** `range` is the buffer range; `pooled` storage returns its buffer to the pool on the last release. */
  constructor(readonly range: BufferRange, readonly pooled: boolean) {}
  /** Adds a reference (a new view). */
  retain(): this {
    this.refs++;
    return this;
  }
  /** Drops a reference; the buffer goes back to the pool with the last one. */
  release(): void {
    if (--this.refs === 0 && this.pooled) gpu().pool.release(this.range.buffer);
  }
}

/** Scopes that track created tensors (see `tidy`). */
export const scopeStack: Set<Tensor>[] = [];

let nextTensorId = 1;

/** Product of a shape's dimensions. */
export function shapeSize(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** `[2, 3, 4]` as text, for error messages. */
export function fmtShape(shape: readonly number[]): string {
  return `[${shape.join(", ")}]`;
}

/** Thrown for wrong shapes, dtypes or disposed inputs, naming the op and the shapes. */
export class ShapeError extends Error {
  /** `op` names the operation that rejected its inputs. */
  constructor(op: string, message: string) {
    super(`${op}: ${message}`);
    this.name = "ShapeError";
  }
}

/**
 * A parameter's gradient kept by someone other than autograd: an optimiser that packs every gradient into one
 * buffer owns one sink per parameter. Autograd knows only this contract: it accumulates into `grad`, and the
 * first gradient after the owner zeroed it may be written straight into `grad` (`takeFresh`), sparing a
 * buffer and an accumulation pass.
 */
export interface GradSink {
  /** The accumulated gradient: a tensor of the parameter's shape that the owner keeps. */
  readonly grad: Tensor;
  /** True while `grad` holds zeros that no gradient has been added to since the owner zeroed it. */
  readonly fresh: boolean;
  /** `grad` if fresh (it is then no longer fresh: the caller overwrites every element), else null. */
  takeFresh(): Tensor | null;
  /** Notes that a gradient was added to `grad` by accumulation. */
  markUsed(): void;
}

/** An n-dimensional array on the GPU. */
export class Tensor {
  /** Unique id (stable ordering and debugging). */
  readonly id: number = nextTensorId++;
  /** Dimensions, outermost first (NCHW for images, OIHW for conv weights). */
  readonly shape: readonly number[];
  /** Element type. */
  readonly dtype: DType;
  /** Number of elements. */
  readonly size: number;
  /** Whether gradients flow to this tensor. */
  requiresGrad = false;
  /** The op that produced this tensor, when it was recorded for autograd. */
  node: GradNode | null = null;
  /** Optional name (parameters: their state-dict key). */
  name?: string;
  /** Where this parameter's gradient lives when its owner (an optimiser) keeps it; see {@link GradSink}. */
  gradSink?: GradSink;
  #storage: Storage;
  #elementOffset: number;
  #grad: Tensor | undefined;
  #disposed = false;
  #released = false;

  /** Internal: use `tensor()`, `zeros()` or an op to create tensors. */
  constructor(shape: readonly number[], dtype: DType, storage: Storage, elementOffset = 0) {
    for (const d of shape) {
      if (!Number.isInteger(d) || d < 0) throw new ShapeError("tensor", `invalid shape ${fmtShape(shape)}`);
    }
    this.shape = Object.freeze([...shape]);
    this.dtype = dtype;
    this.size = shapeSize(shape);
    this.#storage = storage;
    this.#elementOffset = elementOffset;
    scopeStack.at(-1)?.add(this);
  }

  /** Number of dimensions. */
  get rank(): number {
    return this.shape.length;
  }

  /** True after `dispose()`. */
  get disposed(): boolean {
    return this.#disposed;
  }

  /** The bound buffer range; throws if disposed. */
  get range(): BufferRange {
    if (this.#disposed) {
      throw new ShapeError("tensor", `tensor #${this.id} ${fmtShape(this.shape)} was disposed`);
    }
    if (this.#released) {
      throw new ShapeError(
        "tensor",
        `the data of tensor #${this.id} ${fmtShape(this.shape)} was released after use`,
      );
    }
    const base = this.#storage.range;
    return {
      buffer: base.buffer,
      offset: base.offset + this.#elementOffset * 4,
      size: Math.max(4, this.size * 4),
    };
  }

  /** Internal: the shared storage (views retain it). */
  get storage(): Storage {
    return this.#storage;
  }

  /** Internal: offset of this view in its storage, in elements. */
  get elementOffset(): number {
    return this.#elementOffset;
  }

  /** Internal: re-point this tensor at another storage (optimisers pack parameters into one buffer). */
  rebind(storage: Storage, elementOffset: number): void {
    this.#storage.release();
    this.#storage = storage;
    this.#elementOffset = elementOffset;
  }

  /** The accumulated gradient (after `backward()`), if any. */
  get grad(): Tensor | undefined {
    return this.gradSink?.grad ?? this.#grad;
  }

  set grad(g: Tensor | undefined) {
    if (this.#grad && this.#grad !== g) this.#grad.dispose();
    if (g) untrack(g);
    this.#grad = g;
  }

  /** Reads the tensor back to the host (submits pending work). */
  async toArray(): Promise<TypedArrayFor<this["dtype"]>> {
    const bytes = await gpu().read(this.range);
    const n = this.size;
    const out = this.dtype === "f32"
      ? new Float32Array(bytes, 0, n)
      : this.dtype === "i32"
      ? new Int32Array(bytes, 0, n)
      : new Uint32Array(bytes, 0, n);
    return out as TypedArrayFor<this["dtype"]>;
  }

  /** The single value of a one-element tensor. */
  async item(): Promise<number> {
    if (this.size !== 1) throw new ShapeError("item", `tensor has ${this.size} elements, expected 1`);
    return (await this.toArray())[0];
  }

  /**
   * Reverse-mode autodiff from this tensor (a scalar unless `grad` is given). With
   * `releaseIntermediates`, see `BackwardOptions`.
   */
  backward(grad?: Tensor, options: BackwardOptions = {}): void {
    backward(this, grad, options);
  }

  /** A tensor sharing this storage with no autograd history. */
  detach(): Tensor {
    return new Tensor(this.shape, this.dtype, this.#storage.retain(), this.#elementOffset);
  }

  /**
   * Frees this tensor's GPU data early but keeps its autograd node, for an intermediate that no
   * backward rule reads (e.g. a batch-norm output consumed only by `addRelu`, whose backward reads its
   * own output). Gradients still flow through it; reading its data afterwards throws.
   */
  releaseData(): void {
    if (this.#disposed || this.#released) return;
    this.#released = true;
    this.#storage.release();
  }

  /** Releases this tensor's reference to its GPU buffer. Safe to call twice. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    if (!this.#released) this.#storage.release();
    if (this.#grad) {
      this.#grad.dispose();
      this.#grad = undefined;
    }
    this.node = null;
    for (const s of scopeStack) s.delete(this);
  }

  /** `using t = ...` disposes at the end of the block. */
  [Symbol.dispose](): void {
    this.dispose();
  }

  /** Short description for logs. */
  toString(): string {
    return `Tensor(${fmtShape(this.shape)}, ${this.dtype}${this.requiresGrad ? ", requiresGrad" : ""})`;
  }
}

/** Removes a tensor from every open scope so it survives them. */
export function untrack(t: Tensor): Tensor {
  for (const s of scopeStack) s.delete(t);
  return t;
}

/** Options of `Tensor#backward`. */
export interface BackwardOptions {
  /**
   * Free the data of every tensor computed inside the graph (not the root, not leaves) as soon as
   * backward has passed it, as PyTorch frees a graph's saved tensors during backward: a training
   * step's activations then go back to the buffer pool layer by layer, and the gradients of earlier
   * layers reuse them, instead of all staying live until the step's `tidy` ends. Autograd state is
   * kept (gradients are exact); reading such a tensor's data afterwards throws, so use it where
   * nothing reads activations after backward (other views of the same storage, e.g. `detach()`,
   * keep it alive). Default false.
   */
  releaseIntermediates?: boolean;
}

/** Allocates an uninitialised tensor for a kernel output (poisoned in test mode). */
export function empty(shape: readonly number[], dtype: DType = "f32"): Tensor {
  const g = gpu();
  const range = g.allocate(shapeSize(shape) * 4, false);
  const t = new Tensor(shape, dtype, new Storage(range, true));
  if (g.poison) poisonFill(t);
  return t;
}

/** Host data accepted by `tensor()`. */
export type TensorData = ArrayLike<number> | number[][] | number[][][] | number[][][][];

function flatten(data: TensorData): { values: ArrayLike<number>; shape: number[] } {
  if (ArrayBuffer.isView(data)) return { values: data as unknown as ArrayLike<number>, shape: [data.length] };
  const shape: number[] = [];
  let probe: unknown = data;
  while (Array.isArray(probe)) {
    shape.push(probe.length);
    probe = probe[0];
  }
  const values = (data as unknown[]).flat(Infinity) as number[];
  return { values, shape };
}

/** Options of `tensor()`. */
export interface TensorOptions {
  /** Track gradients for this tensor (a leaf: parameter or input of interest). */
  requiresGrad?: boolean;
  /** Element type (default: i32 for an `Int32Array`, u32 for a `Uint32Array`, else f32). */
  dtype?: DType;
  /** Name (shows in errors and state dicts). */
  name?: string;
}

/**
 * Uploads host data as a GPU tensor. `shape` defaults to the nesting of `data`; its size must match.
 */
export function tensor(data: TensorData, shape?: readonly number[], options: TensorOptions = {}): Tensor {
  const { values, shape: inferred } = flatten(data);
  const finalShape = shape ?? inferred;
  // As PyTorch and TF.js do, an integer typed array keeps its type (labels stay labels).
  const dtype = options.dtype ??
    (data instanceof Int32Array ? "i32" : data instanceof Uint32Array ? "u32" : "f32");
  if (shapeSize(finalShape) !== values.length) {
    throw new ShapeError("tensor", `${values.length} values do not fill shape ${fmtShape(finalShape)}`);
  }
  const host = dtype === "f32"
    ? Float32Array.from(values)
    : dtype === "i32"
    ? Int32Array.from(values)
    : Uint32Array.from(values);
  const g = gpu();
  const range = g.allocate(host.byteLength, true);
  const t = new Tensor(finalShape, dtype, new Storage(range, true));
  // The buffer came from the upload free list (no pending dispatch uses it): a queue write is safe.
  if (host.byteLength > 0) g.writeNow({ ...range, size: host.byteLength }, host);
  t.requiresGrad = options.requiresGrad ?? false;
  if (options.name) t.name = options.name;
  return t;
}

/** Overwrites a tensor's contents with host data, ordered with the recorded work (no submit). */
export function writeTensor(t: Tensor, data: ArrayLike<number>): void {
  if (data.length !== t.size) {
    throw new ShapeError("writeTensor", `${data.length} values for a tensor of shape ${fmtShape(t.shape)}`);
  }
  const host = t.dtype === "f32"
    ? Float32Array.from(data)
    : t.dtype === "i32"
    ? Int32Array.from(data)
    : Uint32Array.from(data);
  gpu().write({ ...t.range, size: host.byteLength }, host);
}
