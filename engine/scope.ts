/**
 * Ownership helpers: everything created inside a scope is freed when it ends, except what it returns.
 */
import { scopeStack, Tensor, untrack } from "./tensor.ts";

function collect(value: unknown, out: Set<Tensor>, depth = 0): void {
  if (depth > 4 || value === null || typeof value !== "object") return;
  if (value instanceof Tensor) {
    out.add(value);
  } else if (Array.isArray(value)) {
    for (const v of value) collect(v, out, depth + 1);
  } else if (Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value)) collect(v, out, depth + 1);
  }
}

/**
 * Runs `fn` and disposes every tensor it created except those in its result (a tensor, or arrays and
 * plain objects holding tensors), which move to the enclosing scope. `fn` must be synchronous.
 */
export function tidy<T>(fn: () => T): T {
  const scope = new TensorScope();
  let result: T;
  try {
    result = fn();
    if (result instanceof Promise) {
      throw new Error("tidy: the function must be synchronous (use TensorScope)");
    }
  } catch (e) {
    scope.dispose();
    throw e;
  }
  const keep = new Set<Tensor>();
  collect(result, keep);
  scope.dispose(keep);
  return result;
}

/** Marks a tensor to survive every open scope (it is then the caller's to dispose). */
export function keep<T extends Tensor>(t: T): T {
  untrack(t);
  return t;
}

/** A manually closed scope (usable across `await`): `using s = new TensorScope()`. */
export class TensorScope {
  #tensors = new Set<Tensor>();
  #open = true;

  constructor() {
    scopeStack.push(this.#tensors);
  }

  /** Number of live tensors tracked. */
  get size(): number {
    return this.#tensors.size;
  }

  /** Disposes what the scope tracked, except `keep` (which moves to the enclosing scope). */
  dispose(keepSet: Set<Tensor> = new Set()): void {
    if (!this.#open) return;
    this.#open = false;
    const index = scopeStack.lastIndexOf(this.#tensors);
    if (index >= 0) scopeStack.splice(index, 1);
    const parent = scopeStack.at(-1);
    for (const t of [...this.#tensors]) {
      if (keepSet.has(t)) parent?.add(t);
      else t.dispose();
    }
    this.#tensors.clear();
  }

  /** `using s = new TensorScope()` disposes the scope at the end of the block. */
  [Symbol.dispose](): void {
    this.dispose();
  }
}
