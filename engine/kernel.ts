/**
 * A compiled kernel: WGSL source + entry point, with a pipeline cache keyed by the source.
 *
 * Shapes are fixed during training, so kernels bake their shapes into the generated WGSL; the cache
 * key is the source text itself. A failed pipeline does not throw in WebGPU: creation runs inside
 * a validation error scope whose result is checked at the next synchronisation, naming the kernel.
 */

/**
 * What `Gpu.dispatch` takes: a name for error messages and the WGSL compute shader. Ops do not build
 * these by hand: they describe a kernel by its bindings and body (`engine/program.ts`), which generates
 * the `@binding` declarations and the bind group from one list.
 */
export interface KernelSpec {
  /** Names the op in error messages and debug labels, e.g. `conv2d.forward`. */
  name: string;
  /** Complete WGSL source with one `@compute` entry point; bindings are group 0, binding 0..n-1. */
  code: string;
  /** Entry point (default `main`). */
  entryPoint?: string;
}

/** A pipeline and the identity used in bind-group cache keys. */
export interface CompiledKernel {
  /** Identity in bind-group cache keys. */
  id: number;
  /** The kernel's name (from its spec). */
  name: string;
  /** The compute pipeline. */
  pipeline: GPUComputePipeline;
  /** Layout of bind group 0. */
  layout: GPUBindGroupLayout;
}

/**
 * A second opinion on a new kernel's WGSL, e.g. another implementation's compiler (the test suite checks
 * every kernel it generates with Dawn's Tint as well as the device's own). Resolves to an error message,
 * or null when the kernel is accepted.
 */
export type ShaderCheck = (code: string, name: string) => Promise<string | null>;

const shaderChecks: ShaderCheck[] = [];

/**
 * Adds a check run on every kernel compiled from now on, by any pipeline cache; a rejection surfaces at
 * the next synchronisation like a compilation error. Returns a function that removes the check.
 */
export function addShaderCheck(check: ShaderCheck): () => void {
  shaderChecks.push(check);
  return () => {
    const i = shaderChecks.indexOf(check);
    if (i >= 0) shaderChecks.splice(i, 1);
  };
}

/** Compiles and caches compute pipelines for one device. */
export class PipelineCache {
  #device: GPUDevice;
  #cache = new Map<string, Map<string, CompiledKernel>>();
  #size = 0;
  #nextId = 1;
  /** Pending checks of pipeline creation, resolved at the next synchronisation. */
  pendingChecks: Promise<string | null>[] = [];

  /** A cache compiling on `device`. */
  constructor(device: GPUDevice) {
    this.#device = device;
  }

  /** The pipeline for `spec`, compiled on first use. */
  get(spec: KernelSpec): CompiledKernel {
    const entryPoint = spec.entryPoint ?? "main";
    // Keyed by the source string itself (one map per entry point): V8 caches a string's hash, so a
    // repeated dispatch does not rehash a long generated kernel; concatenating a key would.
    let byCode = this.#cache.get(entryPoint);
    if (!byCode) this.#cache.set(entryPoint, byCode = new Map());
    let kernel = byCode.get(spec.code);
    if (kernel) return kernel;
    const device = this.#device;
    device.pushErrorScope("validation");
    device.pushErrorScope("internal");
    const module = device.createShaderModule({ code: spec.code, label: spec.name });
    const pipeline = device.createComputePipeline({
      layout: "auto",
      compute: { module, entryPoint },
      label: spec.name,
    });
    // Inside the scopes too: on an invalid pipeline it fails, and Dawn reports that outside any scope
    // asynchronously, where it would surface in a later, unrelated synchronisation.
    const layout = pipeline.getBindGroupLayout(0);
    const internal = device.popErrorScope();
    const validation = device.popErrorScope();
    this.pendingChecks.push(
      Promise.all([internal, validation]).then(([a, b]) => {
        const error = a ?? b;
        return error ? `kernel '${spec.name}' failed to compile: ${error.message}` : null;
      }),
    );
    for (const check of shaderChecks) {
      this.pendingChecks.push(
        check(spec.code, spec.name).then((error) => error && `kernel '${spec.name}' rejected: ${error}`),
      );
    }
    kernel = { id: this.#nextId++, name: spec.name, pipeline, layout };
    byCode.set(spec.code, kernel);
    this.#size++;
    return kernel;
  }

  /** Number of distinct pipelines compiled so far. */
  get size(): number {
    return this.#size;
  }
}
