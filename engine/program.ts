/**
 * Kernels that declare their bindings. An op describes a kernel by what it reads and writes — each
 * binding a WGSL name, an access mode, a WGSL type and the buffer behind it — and the WGSL body that
 * uses those names. The `@group(0) @binding(i)` declarations and the bind group are generated from the
 * one list, in the same order, so the two can never disagree:
 *
 * ```ts
 * runKernel({
 *   name: "relu",
 *   bindings: [read("x", x), write("y", out)],
 *   body: `@compute @workgroup_size(64) fn main(...) { ... y[i] = max(x[i], 0.0); }`,
 *   workgroups: grid1d(n, 64),
 * });
 * ```
 *
 * Pipelines are cached by source in `engine/kernel.ts`. Kernels that cost host time to generate (the
 * unrolled GEMMs, ~100 KB of WGSL) go through `runGenerated`, whose memo of generated sources is the one
 * place a kernel's source is memoised.
 *
 * @module
 */
import { type BufferRange, gpu } from "./gpu.ts";
import type { Tensor } from "./tensor.ts";

/** How a kernel uses a binding: a read-only or read-write storage buffer, or a uniform buffer. */
export type Access = "read" | "read_write" | "uniform";

/** What a binding is bound to: a tensor, a range of a buffer, or a whole buffer (uniforms). */
export type Bindable = Tensor | BufferRange | GPUBuffer;

/** One binding of a kernel: its WGSL variable, how it is accessed, and the buffer behind it. */
export interface KernelBinding {
  /** WGSL variable name. */
  name: string;
  /** Access mode. */
  access: Access;
  /** WGSL type of the variable, e.g. `array<f32>` or `array<vec4<f32>>`. */
  type: string;
  /** The buffer bound to it. */
  buffer: Bindable;
}

/** A read-only storage binding (`type` defaults to `array<f32>`). */
export function read(name: string, buffer: Bindable, type = "array<f32>"): KernelBinding {
  return { name, access: "read", type, buffer };
}

/** A read-write storage binding (`type` defaults to `array<f32>`). */
export function write(name: string, buffer: Bindable, type = "array<f32>"): KernelBinding {
  return { name, access: "read_write", type, buffer };
}

/** A uniform binding of a whole buffer (e.g. from `gpu().uniform(...)`) holding a `type`. */
export function uniform(name: string, buffer: GPUBuffer, type: string): KernelBinding {
  return { name, access: "uniform", type, buffer };
}

/** The WGSL declarations of `bindings`: group 0, binding i for the i-th, one line each. */
export function declarations(bindings: readonly KernelBinding[]): string {
  let decls = "";
  for (let i = 0; i < bindings.length; i++) {
    const b = bindings[i];
    const space = b.access === "uniform" ? "uniform" : `storage, ${b.access}`;
    decls += `${i ? "\n" : ""}@group(0) @binding(${i}) var<${space}> ${b.name}: ${b.type};`;
  }
  return decls;
}

/** The resources of `bindings`, in declaration order. */
function resources(bindings: readonly KernelBinding[]): (BufferRange | GPUBuffer)[] {
  return bindings.map(({ buffer: b }) => b instanceof GPUBuffer ? b : "range" in b ? b.range : b);
}

/** A kernel: its bindings, the WGSL that uses them, and how many workgroups to dispatch. */
export interface Kernel {
  /** Names the op in error messages, profiles and debug labels, e.g. `conv2d.forward`. */
  name: string;
  /** What the kernel reads and writes, declared as group 0, bindings 0..n-1 in this order. */
  bindings: KernelBinding[];
  /** The WGSL after the binding declarations, with one `@compute` entry point `main`. */
  body: string;
  /** Workgroup counts [x, y, z]. */
  workgroups: [number, number?, number?];
}

/** Records one dispatch of `kernel` (declarations generated from its bindings, then its body). */
export function runKernel(kernel: Kernel): void {
  const code = `${declarations(kernel.bindings)}\n${kernel.body}`;
  gpu().dispatch({ name: kernel.name, code }, resources(kernel.bindings), kernel.workgroups);
}

/** The generated part of a kernel: the WGSL after the binding declarations and the workgroup counts. */
export interface GeneratedBody {
  /** WGSL after the binding declarations. */
  body: string;
  /** Workgroup counts [x, y, z]. */
  workgroups: [number, number?, number?];
}

/** A kernel whose body is costly to generate: built on a miss of `key` (with the bindings' declarations). */
export interface GeneratedKernel {
  /** As in `Kernel`. */
  name: string;
  /** As in `Kernel`. */
  bindings: KernelBinding[];
  /** Identifies the output of `build` (every input of the generator). */
  key: string;
  /** Generates body and workgroups. */
  build: () => GeneratedBody;
}

interface Source {
  code: string;
  workgroups: [number, number?, number?];
}

const MAX_SOURCES = 1024;
/** Generated sources by key, then by declarations (the short string, so a hit hashes no long key twice). */
const sources = new Map<string, Map<string, Source>>();
let sourceCount = 0;

/**
 * Records one dispatch of a generated kernel. Sources are memoised by key and declarations, so a repeated
 * dispatch neither regenerates nor concatenates the source (the pipeline cache then finds it by a string
 * whose hash V8 has cached).
 */
export function runGenerated(kernel: GeneratedKernel): void {
  const decls = declarations(kernel.bindings);
  let byDecls = sources.get(kernel.key);
  let source = byDecls?.get(decls);
  if (!source) {
    const { body, workgroups } = kernel.build();
    source = { code: `${decls}\n${body}`, workgroups };
    if (sourceCount >= MAX_SOURCES) {
      sources.clear();
      sourceCount = 0;
      byDecls = undefined;
    }
    if (!byDecls) sources.set(kernel.key, byDecls = new Map());
    byDecls.set(decls, source);
    sourceCount++;
  }
  gpu().dispatch({ name: kernel.name, code: source.code }, resources(kernel.bindings), source.workgroups);
}
