/**
 * A GEMM dispatch as a tuning site: its key (op name, sizes, a hash of its hooks and binding types), its
 * candidates (`gemm_candidates.ts`), and scratch buffers of its bindings' sizes to time them on (so that
 * timing never touches, or keeps alive, the tensors of the step being recorded).
 *
 * @module
 */
import { gpu } from "../gpu.ts";
import type { KernelBinding } from "../program.ts";
import type { GemmHooks, GemmTiling } from "../../shaders/gemm.ts";
import { candidateId, type GemmCandidate, gemmCandidates, type GemmSizes } from "./gemm_candidates.ts";
import type { TuneSite } from "./tuner.ts";

/** What `dispatchGemm` records for a GEMM with a given tiling (no tuning). */
export type TiledGemmDispatch = (
  name: string,
  sizes: GemmSizes,
  gemm: { hooks: GemmHooks; bindings: KernelBinding[] },
  tiling: GemmTiling,
) => void;

/** 64-bit FNV-1a of `parts`, as 16 hex digits (stable across runs and runtimes). */
export function hashStrings(parts: readonly string[]): string {
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193 ^ 0x5bd1e995;
  for (const s of parts) {
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      h1 = Math.imul(h1 ^ c, 0x01000193);
      h2 = Math.imul(h2 ^ c, 0x01000193 + 0x2000);
    }
    h1 = Math.imul(h1 ^ 0xff, 0x01000193);
    h2 = Math.imul(h2 ^ 0xfe, 0x01000193 + 0x2000);
  }
  return (h1 >>> 0).toString(16).padStart(8, "0") + (h2 >>> 0).toString(16).padStart(8, "0");
}

function bindingBytes(b: KernelBinding): number {
  const buffer = b.buffer as { range?: { size: number }; size: number };
  return buffer.range ? buffer.range.size : buffer.size;
}

/**
 * The tiling to record `sizes` with: `preferred` (the heuristic) unless the tuner has a measured winner;
 * in mode "measure" an unmeasured GEMM is queued with its candidates.
 */
export function tunedGemmTiling(
  name: string,
  sizes: GemmSizes,
  gemm: { hooks: GemmHooks; bindings: KernelBinding[] },
  preferred: GemmTiling,
  dispatch: TiledGemmDispatch,
): GemmTiling {
  const g = gpu();
  if (!g.tuner.active) return preferred;
  const { hooks, bindings } = gemm;
  const hash = hashStrings([
    hooks.decls,
    hooks.readA,
    hooks.readB,
    hooks.writeC,
    hooks.readA4 ?? "-",
    hooks.readB4 ?? "-",
    hooks.writeC4 ?? "-",
    hooks.readBT4 ?? "-",
    ...bindings.map((b) => `${b.name}:${b.access}:${b.type}`),
  ]);
  const label = `${name} ${sizes.M}×${sizes.N}×${sizes.K}${sizes.batch > 1 ? ` ×${sizes.batch}` : ""}`;
  let candidates: GemmCandidate[] | null = null;
  const list = () =>
    candidates ??= gemmCandidates(sizes, hooks, preferred, { limits: g.report.limits, strategy: g.kernels });
  const heuristic = candidateId(preferred, sizes);
  // Sizes now: the tensors may be disposed (and their buffers reused) before the site is measured.
  const bytes = bindings.map((b) => b.access === "uniform" ? 0 : bindingBytes(b));
  const site: TuneSite = {
    key: `gemm|${name}|${sizes.M}x${sizes.N}x${sizes.K}x${sizes.batch}|${hash}`,
    label,
    heuristic,
    get candidates() {
      return list().map((c) => c.id);
    },
    prepare() {
      const scratch = bindings.map((b, i) =>
        b.access === "uniform" ? null : g.device.createBuffer({
          size: Math.max(16, Math.ceil(bytes[i] / 16) * 16),
          usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC,
        })
      );
      const scratchBindings = bindings.map((b, i) =>
        scratch[i] ? { ...b, buffer: { buffer: scratch[i]!, offset: 0, size: bytes[i] } } : b
      );
      return {
        record(id: string) {
          const c = list().find((x) => x.id === id);
          if (!c) throw new Error(`${label}: no candidate ${id}`);
          dispatch(`${name} [tuning ${id}]`, sizes, { hooks, bindings: scratchBindings }, c.tiling);
        },
        dispose() {
          for (const b of scratch) b?.destroy();
        },
      };
    },
  };
  const choice = g.tuner.choose(site);
  if (choice === heuristic) return preferred;
  return list().find((c) => c.id === choice)?.tiling ?? preferred;
}
