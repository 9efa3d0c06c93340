/**
 * Split-K for the GEMM template: a contraction too long for one invocation's loop budget
 * (`MAX_LOOP_TRIPS`; see `gemmMaxK`) is cut into S chunks of Kc, computed as ONE GEMM of batch·S entries
 * whose partial products go to a scratch buffer, then summed in a fixed order by a small kernel that hands
 * each sum to the caller's `writeC` hook. Works for any hooks (matmul, linear, every convolution route):
 * the caller's hooks are wrapped, not rewritten.
 *
 * The wrapped GEMM entry z = b·S + s reads the caller's batch entry b at contraction index k + s·Kc (zero
 * past K); its `writeC` stores into `gemmPart[z, row, col]`. Both kernels also call the caller's other hooks
 * behind a condition that never holds (`row == 0xffffffffu`), so that every binding the caller declared
 * stays in use and the pipeline's automatic layout keeps it: both dispatch the caller's bindings plus the
 * scratch buffer, in the caller's binding order.
 *
 * @module
 */
import { flatMain } from "./common.ts";
import { type GemmHooks, gemmMaxK, type GemmTiling } from "./gemm.ts";

/** How a contraction of length K is split. */
export interface SplitK {
  /** Number of chunks. */
  S: number;
  /** Contraction length of every chunk (a multiple of 4 and of tileK; S·Kc ≥ K, the excess reads zeros). */
  Kc: number;
}

/**
 * The split of a contraction of length `K` on tiling `t`: as few chunks as the loop budget allows (S = 1
 * when one dispatch can take it), or `t.splitK` chunks when it asks for more (at most one per K step).
 */
export function splitK(K: number, t: GemmTiling): SplitK {
  const maxK = gemmMaxK(t);
  const step = t.useWorkgroupMemory ? Math.max(4, t.tileK) : 4;
  const S = Math.max(1, Math.ceil(K / maxK), Math.min(t.splitK ?? 1, Math.ceil(K / step)));
  return { S, Kc: Math.ceil(K / S / step) * step };
}

/** A GEMM problem's sizes. */
export interface GemmSizes {
  M: number;
  N: number;
  K: number;
  batch: number;
}

/** The caller's hooks as functions with names that cannot clash with the template's. */
function userFunctions(h: GemmHooks, N: number): string {
  const fns = [
    `fn gemmSplitReadA(b: u32, row: u32, k: u32) -> f32 {\n  ${h.readA}\n}`,
    `fn gemmSplitReadB(b: u32, k: u32, col: u32) -> f32 {\n  ${h.readB}\n}`,
    `fn gemmSplitWriteC(b: u32, row: u32, col: u32, v: f32) {\n  ${h.writeC}\n}`,
  ];
  if (h.readA4) fns.push(`fn gemmSplitReadA4(b: u32, row: u32, k: u32) -> vec4<f32> {\n  ${h.readA4}\n}`);
  if (h.readB4 && N % 4 === 0) {
    fns.push(`fn gemmSplitReadB4(b: u32, k: u32, col: u32) -> vec4<f32> {\n  ${h.readB4}\n}`);
  }
  if (h.readBT4) fns.push(`fn gemmSplitReadBT4(b: u32, k: u32, col: u32) -> vec4<f32> {\n  ${h.readBT4}\n}`);
  if (h.writeC4 && N % 4 === 0) {
    fns.push(`fn gemmSplitWriteC4(b: u32, row: u32, col: u32, v: vec4<f32>) {\n  ${h.writeC4}\n}`);
  }
  return fns.join("\n");
}

/** WGSL statements calling every caller hook except `skip` (placed behind a condition that never holds). */
function keepBindings(h: GemmHooks, N: number, skip: "writeC" | "reads"): string {
  const calls: string[] = [];
  if (skip !== "reads") {
    calls.push("gemmKeep = gemmSplitReadA(0u, 0u, 0u) + gemmSplitReadB(0u, 0u, 0u);");
    if (h.readA4) calls.push("gemmKeep = gemmKeep + gemmSplitReadA4(0u, 0u, 0u).x;");
    if (h.readB4 && N % 4 === 0) calls.push("gemmKeep = gemmKeep + gemmSplitReadB4(0u, 0u, 0u).x;");
    if (h.readBT4) calls.push("gemmKeep = gemmKeep + gemmSplitReadBT4(0u, 0u, 0u).x;");
  }
  if (skip !== "writeC") calls.push("gemmSplitWriteC(0u, 0u, 0u, gemmKeep);");
  if (h.writeC4 && N % 4 === 0) calls.push("gemmSplitWriteC4(0u, 0u, 0u, vec4<f32>(gemmKeep));");
  return calls.join(" ");
}

/**
 * The hooks of the chunked GEMM (sizes M, N, Kc, batch·S) for the caller's hooks `h` of a problem of
 * `sizes`; the dispatch declares the caller's bindings and then the scratch buffer `gemmPart`
 * (S·batch·M·N floats, read_write).
 */
export function splitKHooks(h: GemmHooks, sizes: GemmSizes, split: SplitK): GemmHooks {
  const { M, N, K } = sizes;
  const { S, Kc } = split;
  const kk = `let kk = k + (b % ${S}u) * ${Kc}u;`;
  const hooks: GemmHooks = {
    decls: `${h.decls}
${userFunctions(h, N)}`,
    readA: `${kk} if (kk >= ${K}u) { return 0.0; } return gemmSplitReadA(b / ${S}u, row, kk);`,
    readB: `${kk} if (kk >= ${K}u) { return 0.0; } return gemmSplitReadB(b / ${S}u, kk, col);`,
    writeC: `gemmPart[(b * ${M}u + row) * ${N}u + col] = v;
  if (row == 0xffffffffu) { var gemmKeep = v; ${keepBindings(h, N, "reads")} }`,
  };
  if (h.readA4) {
    hooks.readA4 = `${kk} if (kk + 3u < ${K}u) { return gemmSplitReadA4(b / ${S}u, row, kk); }
  return vec4<f32>(readA(b, row, k), readA(b, row, k + 1u), readA(b, row, k + 2u), readA(b, row, k + 3u));`;
  }
  if (h.readB4 && N % 4 === 0) {
    hooks.readB4 =
      `${kk} if (kk >= ${K}u) { return vec4<f32>(0.0); } return gemmSplitReadB4(b / ${S}u, kk, col);`;
  }
  if (h.readBT4) {
    hooks.readBT4 = `${kk} if (kk + 3u < ${K}u) { return gemmSplitReadBT4(b / ${S}u, kk, col); }
  return vec4<f32>(readB(b, k, col), readB(b, k + 1u, col), readB(b, k + 2u, col), readB(b, k + 3u, col));`;
  }
  return hooks;
}

/**
 * The kernel that sums the S partial products of every output element in order s = 0, 1, … and stores
 * the sum through the caller's `writeC` (one invocation per element; dispatch `batch·M·N` invocations
 * with workgroup size 64). Bindings (declared by the dispatch): the caller's, then `gemmPart` (read).
 */
export function splitKSumCode(h: GemmHooks, sizes: GemmSizes, split: SplitK): string {
  const { M, N, batch } = sizes;
  const { S } = split;
  return `${h.decls}
${userFunctions(h, N)}
${flatMain(batch * M * N, 64)}
  let col = i % ${N}u;
  let row = (i / ${N}u) % ${M}u;
  let b = i / ${M * N}u;
  let base = (b * ${S * M}u + row) * ${N}u + col;
  var v = gemmPart[base];
  for (var s = 1u; s < ${S}u; s = s + 1u) { v = v + gemmPart[base + s * ${M * N}u]; }
  if (row == 0xffffffffu) { var gemmKeep = v; ${keepBindings(h, N, "writeC")} }
  gemmSplitWriteC(b, row, col, v);
}`;
}
