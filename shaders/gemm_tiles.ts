/**
 * The vec4 workgroup-tile GEMM (tilings with `useWorkgroupMemory` and `vec4`; `gemmKernel` in
 * `shaders/gemm.ts` routes here): the GPU-grade kernel of the "gpu" strategy, in the spirit of TF.js
 * WebGPU's `makeMatMulPackedVec4Source`.
 *
 * Per K step of `tileK`, the workgroup stages A[tileM][tileK] and B[tileK][tileN] in `var<workgroup>`
 * arrays of vec4s (A along k, B along n), each invocation loading whole vec4s through the hooks `readA4`
 * (k + 3 < K; the K tail from scalar `readA`) and `readB4` (N % 4 == 0, else the template's clamped
 * builder). Each invocation then accumulates threadM rows × threadN/4 vec4 columns, reading per four k one
 * vec4 of A per row and one vec4 of B per k and column group, and stores with `writeC4` where the hooks
 * have it. Rows and column groups of an invocation are strided by the workgroup's size (row
 * `lid.y + i·wgY`, column group `lid.x + j·wgX`), so neighbouring invocations read neighbouring vec4s of
 * workgroup memory and store neighbouring vec4s of C (coalesced, free of bank conflicts).
 *
 * Bounds checks are emitted only for the edges a shape has (M % tileM, N % tileN, K % tileK), and the
 * staging loops are unrolled (a few vec4s per invocation), so the only loops are the K loop and the
 * tileK/4 loop inside it (`tileLoopTrips`). Every invocation reaches every barrier (no early return).
 *
 * @module
 */
import { loopTrips } from "./common.ts";
import type { GemmKernel, GemmSpec, GemmTiling } from "./gemm.ts";

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

/** Loop iterations of one invocation of the vec4 tile kernel for a contraction of length `K`. */
export function tileLoopTrips(K: number, t: GemmTiling): number {
  const steps = Math.ceil(K / t.tileK);
  return loopTrips(steps) + steps * loopTrips(t.tileK / 4);
}

/**
 * WGSL of the vec4 workgroup-tile GEMM of `spec` (tiling with `vec4`), after `hooks`: the hook functions
 * the template generated for it (readA, readB, writeC, readA4, readB4 and, when N % 4 == 0 and the caller
 * has one, writeC4).
 */
export function tileKernel(spec: GemmSpec, hooks: string): GemmKernel {
  const { M, N, K, batch, tiling } = spec;
  const { tileM, tileN, tileK, threadM: TM, threadN } = tiling;
  const TN4 = threadN / 4;
  const wgX = tileN / threadN;
  const wgY = tileM / TM;
  const threads = wgX * wgY;
  const K4 = tileK / 4; // vec4s per row of the A tile
  const N4 = tileN / 4; // vec4s per row of the B tile
  const sizeA = tileM * K4;
  const sizeB = tileK * N4;
  const edgeM = M % tileM !== 0;
  const edgeN = N % tileN !== 0;
  const edgeK = K % tileK !== 0;
  const I = range(TM);
  const J = range(TN4);
  const comps = ["x", "y", "z", "w"];
  const lines: string[] = [];
  const push = (s: string) => lines.push(s);

  // Staging of A: vec4 e of the tile is row e / K4, k-group e % K4 (powers of two in every tiling used).
  for (const l of range(Math.ceil(sizeA / threads))) {
    const partial = (l + 1) * threads > sizeA;
    push(`    {`);
    push(`      let e = li + ${l * threads}u;`);
    if (partial) push(`      if (e < ${sizeA}u) {`);
    push(`      let row = tileRow + e / ${K4}u;`);
    push(`      let k = k0 + 4u * (e % ${K4}u);`);
    push(`      var v = vec4<f32>(0.0);`);
    const conds: string[] = [];
    if (edgeM) conds.push(`row < ${M}u`);
    let load: string;
    if (!edgeK) load = `v = readA4(bz, row, k);`;
    else if (K % 4 === 0) {
      conds.push(`k < ${K}u`);
      load = `v = readA4(bz, row, k);`;
    } else {
      load = `if (k + 3u < ${K}u) { v = readA4(bz, row, k); } else {
${
        range(4).map((c) => `          if (k + ${c}u < ${K}u) { v.${comps[c]} = readA(bz, row, k + ${c}u); }`)
          .join("\n")
      }
        }`;
    }
    push(conds.length ? `      if (${conds.join(" && ")}) { ${load} }` : `      ${load}`);
    push(`      tileA[e] = v;`);
    if (partial) push(`      }`);
    push(`    }`);
  }
  // Staging of B: vec4 e of the tile is k-row e / N4, column group e % N4.
  for (const l of range(Math.ceil(sizeB / threads))) {
    const partial = (l + 1) * threads > sizeB;
    push(`    {`);
    push(`      let e = li + ${l * threads}u;`);
    if (partial) push(`      if (e < ${sizeB}u) {`);
    push(`      let k = k0 + e / ${N4}u;`);
    push(`      let col = tileCol + 4u * (e % ${N4}u);`);
    push(`      var v = vec4<f32>(0.0);`);
    const conds: string[] = [];
    if (edgeK) conds.push(`k < ${K}u`);
    if (edgeN) conds.push(`col < ${N}u`);
    const load = `v = readB4(bz, k, col);`;
    push(conds.length ? `      if (${conds.join(" && ")}) { ${load} }` : `      ${load}`);
    push(`      tileB[e] = v;`);
    if (partial) push(`      }`);
    push(`    }`);
  }
  const staging = lines.splice(0);

  // Four k per step: one vec4 of A per row (its four k), one vec4 of B per k and column group.
  for (const i of I) push(`      let a${i} = tileA[${i ? `aRow + ${i * wgY * K4}u` : "aRow"} + kk];`);
  for (const q of range(4)) {
    for (const j of J) {
      push(
        `      let b${q}_${j} = tileB[(4u * kk + ${q}u) * ${N4}u + ${j ? `bCol + ${j * wgX}u` : "bCol"}];`,
      );
    }
  }
  for (const i of I) {
    for (const j of J) {
      let e = `acc${i}_${j}`;
      for (const q of range(4)) e = `fma(vec4<f32>(a${i}.${comps[q]}), b${q}_${j}, ${e})`;
      push(`      acc${i}_${j} = ${e};`);
    }
  }
  const inner = lines.splice(0);

  const vecC = hooks.includes("fn writeC4(");
  for (const i of I) {
    push(`  {`);
    push(`    let row = tileRow + lid.y + ${i * wgY}u;`);
    if (edgeM) push(`    if (row < ${M}u) {`);
    for (const j of J) {
      push(`    {`);
      push(`      let col = tileCol + 4u * (lid.x + ${j * wgX}u);`);
      const acc = `acc${i}_${j}`;
      if (vecC) {
        push(
          edgeN
            ? `      if (col < ${N}u) { writeC4(bz, row, col, ${acc}); }`
            : `      writeC4(bz, row, col, ${acc});`,
        );
      } else {
        for (const c of range(4)) {
          const colc = c ? `col + ${c}u` : "col";
          const store = `writeC(bz, row, ${colc}, ${acc}.${comps[c]});`;
          // Without an N edge every column group lies inside C (N is then a multiple of tileN, so of 4).
          push(edgeN ? `      if (${colc} < ${N}u) { ${store} }` : `      ${store}`);
        }
      }
      push(`    }`);
    }
    if (edgeM) push(`    }`);
    push(`  }`);
  }
  const stores = lines.splice(0);

  const code = `${hooks}

var<workgroup> tileA: array<vec4<f32>, ${sizeA}>;
var<workgroup> tileB: array<vec4<f32>, ${sizeB}>;

@compute @workgroup_size(${wgX}, ${wgY})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32,
        @builtin(local_invocation_id) lid: vec3<u32>) {
  let bz = wid.z;
  let tileRow = wid.y * ${tileM}u;
  let tileCol = wid.x * ${tileN}u;
  let aRow = lid.y * ${K4}u;
  let bCol = lid.x;
${I.map((i) => J.map((j) => `  var acc${i}_${j} = vec4<f32>(0.0);`).join("\n")).join("\n")}
  for (var k0 = 0u; k0 < ${K}u; k0 = k0 + ${tileK}u) {
${staging.join("\n")}
    workgroupBarrier();
    for (var kk = 0u; kk < ${K4}u; kk = kk + 1u) {
${inner.join("\n")}
    }
    workgroupBarrier();
  }
${stores.join("\n")}
}`;
  return { code, workgroups: [Math.ceil(N / tileN), Math.ceil(M / tileM), batch] };
}
