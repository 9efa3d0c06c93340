/**
 * WGSL builders for the supervised contrastive loss over a table of multisets (batches given as count
 * vectors), the kernels behind `engine/ops/sc_multiset.ts` and the toy simulations of Figs. 5 and 6.
 *
 * A multiset B of size b over N points is its count vector c ∈ ℕ^N (Σc = b), packed `bits` bits per
 * count into `words` u32 (counts never straddle a word). With the Gram matrix G = Z·Zᵀ the batch loss
 * (Eq. 6, multiset semantics) is, with q_ik = c_k − δ_ik (one copy of the anchor removed) and
 * s_ik = [y_i = y_k]:
 *
 *   ℓ(B) = Σ_i c_i·[P_i > 0]·( LSE_i − S_i/P_i ),  P_i = Σ_k q_ik s_ik,  S_i = Σ_k q_ik s_ik G_ik,
 *   LSE_i = m_i + log Σ_k q_ik exp(G_ik − m_i)      (m_i = max_k G_ik: integer weights, no subtraction)
 *
 * and its gradient with respect to G (G_ik and G_ki as separate variables) is
 *
 *   ∂ℓ/∂G_ik = c_i q_ik (E_ik/den_i − s_ik/P_i),   E_ik = exp(G_ik − m_i), den_i = Σ_k q_ik E_ik.
 *
 * Since E and s do not depend on B, the sum over the table is E_ik·U_ik − s_ik·V_ik with
 * U_ik = Σ_B (c_i/den_i) q_ik and V_ik = Σ_B (c_i/P_i) q_ik: one invocation per (row i, chunk of
 * multisets) accumulates 2N + 1 scalars in registers (the k loops are unrolled here in TypeScript),
 * writes them once, and fixed-fan-in reduction kernels sum the chunks in a fixed order (deterministic,
 * no atomics, no workgroup memory).
 *
 * @module
 */
import { f32Lit, loopTrips } from "./common.ts";

/** Workgroup size of the multiset kernels. */
export const SCM_WG = 64;

/** Bit layout of packed count vectors. */
export interface CountsLayout {
  /** Number of points (length of a count vector). */
  N: number;
  /** Bits per count (4, 8 or 16). */
  bits: number;
  /** Counts per u32 word. */
  perWord: number;
  /** u32 words per count vector. */
  words: number;
}

/** The packing of count vectors of length N whose entries are at most `maxCount`. */
export function countsLayout(N: number, maxCount: number): CountsLayout {
  const bits = maxCount < 16 ? 4 : maxCount < 256 ? 8 : 16;
  const perWord = 32 / bits;
  return { N, bits, perWord, words: Math.ceil(N / perWord) };
}

/** WGSL lines loading the count vector at word offset `base` into `let c0..c{N-1}: f32`. */
function unpackLines(L: CountsLayout, base: string, indent = "    "): string {
  const lines: string[] = [];
  const mask = (1 << L.bits) - 1;
  for (let w = 0; w < L.words; w++) lines.push(`${indent}let cw${w} = counts[${base} + ${w}u];`);
  for (let k = 0; k < L.N; k++) {
    const w = Math.floor(k / L.perWord);
    const shift = (k % L.perWord) * L.bits;
    lines.push(`${indent}let c${k} = f32(${shift ? `(cw${w} >> ${shift}u)` : `cw${w}`} & ${mask}u);`);
  }
  return lines.join("\n");
}

/** `terms(k)` joined by ` + ` over k = 0..N-1. */
function sumOf(N: number, term: (k: number) => string): string {
  return Array.from({ length: N }, (_, k) => term(k)).join(" + ");
}

/** Flat invocation index `g` of a 1-D or 2-D dispatch with workgroup size `wg`; returns past `n`. */
function flatHeader(n: number, wg = SCM_WG): string {
  return `@compute @workgroup_size(${wg})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let g = gid.x + gid.y * nwg.x * ${wg}u;
  if (g >= ${n}u) { return; }`;
}

/** Loop iterations of one invocation of {@link gramExpBody} (see `MAX_LOOP_TRIPS`): N + 1 dot products. */
export function gramExpTrips(N: number, h: number): number {
  return (N + 1) * loopTrips(h) + loopTrips(N - 1);
}

/**
 * Per-step preparation from Z [N, h]: aux = [E (N×N) | G (N×N) | m (N)] with G = Z·Zᵀ,
 * m_i = max_k G_ik and E_ik = exp(G_ik − m_i). One invocation per (i, k).
 */
export function gramExpBody(N: number, h: number): string {
  const NN = N * N;
  return `fn gram(i: u32, k: u32) -> f32 {
  var s = 0.0;
  for (var d = 0u; d < ${h}u; d++) { s = fma(z[i * ${h}u + d], z[k * ${h}u + d], s); }
  return s;
}
${flatHeader(NN)}
  let i = g / ${N}u;
  let k = g % ${N}u;
  var m = gram(i, 0u);
  for (var kk = 1u; kk < ${N}u; kk++) { m = max(m, gram(i, kk)); }
  let gik = gram(i, k);
  aux[g] = exp(gik - m);
  aux[${NN}u + g] = gik;
  if (k == 0u) { aux[${2 * NN}u + i] = m; }
}`;
}

/** Parameters of {@link multisetPartialsBody}. */
export interface PartialsParams {
  /** Packing of the count vectors (and N). */
  layout: CountsLayout;
  /** Number of multisets in the table. */
  M: number;
  /** Number of chunks; chunk `j` holds multisets j, j + chunks, j + 2·chunks, … */
  chunks: number;
  /** Multisets per chunk: ⌈M / chunks⌉. */
  perChunk: number;
}

/**
 * Partial sums over chunks of the multiset table. Bindings: aux (from {@link gramExpBody}),
 * labels i32 [N], counts u32 [M·words], out f32 [chunks, N, N+1]. Invocation (row i, chunk j) writes
 * out[j, i, k] = Σ_{B∈chunk} ∂ℓ(B)/∂G_ik for k < N and out[j, i, N] = Σ_{B∈chunk} c_i·(anchor term of i).
 */
export function multisetPartialsBody(p: PartialsParams): string {
  const { layout: L, M, chunks, perChunk } = p;
  const N = L.N;
  const NN = N * N;
  const ks = Array.from({ length: N }, (_, k) => k);
  const mask = (1 << L.bits) - 1;
  const rowConsts = ks.map((k) =>
    `  let e${k} = aux[i * ${N}u + ${k}u];
  let s${k} = select(0.0, 1.0, labels[${k}] == yi);
  let sg${k} = s${k} * aux[${NN}u + i * ${N}u + ${k}u];
  let d${k} = select(0.0, 1.0, i == ${k}u);
  var u${k} = 0.0;
  var v${k} = 0.0;`
  ).join("\n");
  return `${flatHeader(N * chunks)}
  let i = g / ${chunks}u;
  let chunk = g % ${chunks}u;
  let yi = labels[i];
  let mi = aux[${2 * NN}u + i];
  let wordI = i / ${L.perWord}u;
  let shiftI = (i % ${L.perWord}u) * ${L.bits}u;
${rowConsts}
  var lsum = 0.0;
  for (var j = 0u; j < ${perChunk}u; j++) {
    let t = chunk + j * ${chunks}u;
    if (t >= ${M}u) { break; }
    let base = t * ${L.words}u;
${unpackLines(L, "base")}
${ks.map((k) => `    let q${k} = c${k} - d${k};`).join("\n")}
    let ci = f32((counts[base + wordI] >> shiftI) & ${mask}u);
    let den = ${sumOf(N, (k) => `q${k} * e${k}`)};
    let pos = ${sumOf(N, (k) => `q${k} * sg${k}`)};
    let np = ${sumOf(N, (k) => `q${k} * s${k}`)};
    let valid = ci > 0.5 && np > 0.5;
    let ps = max(np, 1.0);
    let dens = max(den, 1e-30);
    lsum += select(0.0, ci * (mi + log(dens) - pos / ps), valid);
    let uu = select(0.0, ci / dens, valid);
    let vv = select(0.0, ci / ps, valid);
${ks.map((k) => `    u${k} = fma(uu, q${k}, u${k});\n    v${k} = fma(vv, q${k}, v${k});`).join("\n")}
  }
  let o = (chunk * ${N}u + i) * ${N + 1}u;
${ks.map((k) => `  out[o + ${k}u] = e${k} * u${k} - s${k} * v${k};`).join("\n")}
  out[o + ${N}u] = lsum;
}`;
}

/** out[r, w] = Σ_{j<fanIn} in[r·fanIn + j, w] over existing rows: one level of a fixed-order reduction. */
export function reduceRowsBody(rows: number, width: number, fanIn: number): string {
  const outRows = Math.ceil(rows / fanIn);
  return `${flatHeader(outRows * width)}
  let r = g / ${width}u;
  let w = g % ${width}u;
  let first = r * ${fanIn}u;
  let last = min(first + ${fanIn}u, ${rows}u);
  var s = 0.0;
  for (var j = first; j < last; j++) { s += src[j * ${width}u + w]; }
  dst[g] = s;
}`;
}

/** loss[0] = (Σ_i red[i, N]) / M: the mean batch loss from the reduced partials [N, N+1]. */
export function meanLossBody(N: number, M: number): string {
  return `@compute @workgroup_size(1)
fn main() {
  var s = 0.0;
  for (var i = 0u; i < ${N}u; i++) { s += red[i * ${N + 1}u + ${N}u]; }
  loss[0] = s / ${f32Lit(M)};
}`;
}

/**
 * Backward to the points: dz[i, d] = (gOut[0]/M)·Σ_k (dG_ik + dG_ki)·z[k, d] with dG read from the
 * reduced partials red [N, N+1]. One invocation per (i, d).
 */
export function gramBackwardBody(N: number, h: number, M: number): string {
  return `${flatHeader(N * h)}
  let i = g / ${h}u;
  let d = g % ${h}u;
  var s = 0.0;
  for (var k = 0u; k < ${N}u; k++) {
    s = fma(red[i * ${N + 1}u + k] + red[k * ${N + 1}u + i], z[k * ${h}u + d], s);
  }
  dz[g] = s * (gout[0] / ${f32Lit(M)});
}`;
}

/** Parameters of {@link sphereStepBody}. */
export interface SphereStepParams {
  /** Number of points. */
  N: number;
  /** Dimension of the points. */
  h: number;
  /** Number of multisets (the gradient is of the mean over them). */
  M: number;
  /** Sphere radius ρ. */
  radius: number;
  /** Heavy-ball momentum μ. */
  momentum: number;
  /** Length of the learning-rate schedule (and of the loss log). */
  steps: number;
  /** Project the gradient and the velocity onto the tangent space (Riemannian step). */
  tangent: boolean;
}

/** Loop iterations of one invocation of {@link sphereStepBody} (see `MAX_LOOP_TRIPS`). */
export function sphereStepTrips(N: number, h: number): number {
  return loopTrips(h) + h * loopTrips(N) + loopTrips(N) + 5 * loopTrips(h);
}

/**
 * One projected (heavy-ball) gradient step on the sphere for the mean loss over the table: one workgroup,
 * invocation i updating row i (N ≤ 64), so that no invocation's loops grow with N·N·h (the loop budget,
 * `MAX_LOOP_TRIPS`; see {@link sphereStepTrips}). Bindings: red [N, N+1] (reduced partials at the current
 * Z), z [N, h] (updated in place), vel [N, h], lrs [steps], state u32 [1] (step counter, incremented),
 * lossLog [steps] (mean loss at the current Z, before the update, at index min(t, steps−1)).
 * With t the counter: g = (dG + dGᵀ)Z/M, (optionally g ← g − ⟨g, ẑ⟩ẑ per row), v ← μv + g,
 * z ← ρ·(z − lr_t·v)/‖z − lr_t·v‖ (and v projected to the new tangent space when `tangent`). Every
 * invocation reads Z and the counter before a barrier; rows and the counter are written after it.
 */
export function sphereStepBody(p: SphereStepParams): string {
  const { N, h, M, radius, momentum, steps, tangent } = p;
  return `@compute @workgroup_size(${N})
fn main(@builtin(local_invocation_index) i: u32) {
  let counter = state[0];
  let t = min(counter, ${steps - 1}u);
  let lr = lrs[t];
  var gz: array<f32, ${h}>;
  for (var d = 0u; d < ${h}u; d++) {
    var s = 0.0;
    for (var k = 0u; k < ${N}u; k++) {
      s = fma(red[i * ${N + 1}u + k] + red[k * ${N + 1}u + i], z[k * ${h}u + d], s);
    }
    gz[d] = s / ${f32Lit(M)};
  }
  storageBarrier();
  if (i == 0u) {
    var loss = 0.0;
    for (var r = 0u; r < ${N}u; r++) { loss += red[r * ${N + 1}u + ${N}u]; }
    lossLog[t] = loss / ${f32Lit(M)};
    state[0] = counter + 1u;
  }
  let o = i * ${h}u;
  var nz = 0.0;
  for (var d = 0u; d < ${h}u; d++) { nz = fma(z[o + d], z[o + d], nz); }
  let inv = 1.0 / max(sqrt(nz), 1e-30);
  var gr = 0.0;
  for (var d = 0u; d < ${h}u; d++) { gr = fma(gz[d], z[o + d] * inv, gr); }
  if (!${tangent}) { gr = 0.0; }
  var nn = 0.0;
  for (var d = 0u; d < ${h}u; d++) {
    let v = ${f32Lit(momentum)} * vel[o + d] + (gz[d] - gr * z[o + d] * inv);
    vel[o + d] = v;
    let zn = z[o + d] - lr * v;
    z[o + d] = zn;
    nn = fma(zn, zn, nn);
  }
  let scale = ${f32Lit(radius)} / max(sqrt(nn), 1e-30);
  var vr = 0.0;
  for (var d = 0u; d < ${h}u; d++) {
    z[o + d] = z[o + d] * scale;
    vr = fma(vel[o + d], z[o + d], vr);
  }
  if (${tangent}) {
    let c = vr / ${f32Lit(radius * radius)};
    for (var d = 0u; d < ${h}u; d++) { vel[o + d] = vel[o + d] - c * z[o + d]; }
  }
}`;
}

/**
 * Loss of every multiset of the table: losses[t] = ℓ(B_t) from aux ({@link gramExpBody}), labels i32
 * [N] and counts. One invocation per multiset; loop over rows i, the k sums unrolled.
 */
export function batchLossesBody(layout: CountsLayout, M: number): string {
  const N = layout.N;
  const NN = N * N;
  const mask = (1 << layout.bits) - 1;
  const ks = Array.from({ length: N }, (_, k) => k);
  return `${flatHeader(M)}
  let base = g * ${layout.words}u;
${unpackLines(layout, "base", "  ")}
  var total = 0.0;
  for (var i = 0u; i < ${N}u; i++) {
    let ci = f32((counts[base + i / ${layout.perWord}u] >> ((i % ${layout.perWord}u) * ${layout.bits}u)) & ${mask}u);
    if (ci < 0.5) { continue; }
    let yi = labels[i];
    let r = i * ${N}u;
${
    ks.map((k) =>
      `    let q${k} = c${k} - select(0.0, 1.0, i == ${k}u);\n    let s${k} = select(0.0, 1.0, labels[${k}] == yi);`
    ).join("\n")
  }
    let np = ${sumOf(N, (k) => `q${k} * s${k}`)};
    if (np < 0.5) { continue; }
    let den = ${sumOf(N, (k) => `q${k} * aux[r + ${k}u]`)};
    let pos = ${sumOf(N, (k) => `q${k} * s${k} * aux[${NN}u + r + ${k}u]`)};
    total += ci * (aux[${2 * NN}u + i] + log(max(den, 1e-30)) - pos / np);
  }
  losses[g] = total;
}`;
}

/** Parameters of {@link sphereDescentBody}. */
export interface SphereDescentParams {
  /** Packing of the count vectors (and N). */
  layout: CountsLayout;
  /** Number of independent problems (one invocation each). */
  R: number;
  /** Dimension of the points. */
  h: number;
  /** Sphere radius ρ. */
  radius: number;
  /** Heavy-ball momentum. */
  momentum: number;
  /** Base learning rate. */
  lr: number;
  /** Schedule length T: lr_s = lr·(1 − s/T)^power. */
  totalSteps: number;
  /** Schedule exponent (0: constant). */
  power: number;
  /** Number of entries of `samples` (≥ 1): step s uses multiset samples[min(s, numSamples − 1)]. */
  numSamples: number;
}

/**
 * Loop iterations of one invocation of {@link sphereDescentBody} (see `MAX_LOOP_TRIPS`): `fixed` for the
 * loads and stores around the steps, `perStep` for each step of a dispatch (every loop counted, though
 * the compiler may unroll short ones).
 */
export function sphereDescentTrips(N: number, h: number): { fixed: number; perStep: number } {
  const NH = N * h;
  const pairs = N * (3 * loopTrips(N) + 2 * N * loopTrips(h));
  return {
    fixed: 2 * loopTrips(NH) + loopTrips(N) + 1,
    perStep: 1 + loopTrips(NH) + loopTrips(N) + pairs + loopTrips(N) + 4 * N * loopTrips(h),
  };
}

/**
 * Many projected (heavy-ball, Riemannian) gradient steps of the loss of ONE multiset per step, for R
 * independent problems, inside one dispatch (the Fig. 5 per-batch minimisers and the stochastic
 * variant of Fig. 6). Bindings: z [R, N, h] and vel [R, N, h] (read_write, updated), labels i32
 * [R, N], counts u32 (the table), samples u32 [numSamples], params uniform (first step s0, number
 * of steps), loss [R] (loss of the last step's multiset at the Z before its update).
 * Per step: g_i = Σ_k (dG_ik + dG_ki) z_k with dG from the batch of that step, g projected to the
 * tangent space, v ← μv + g, z ← ρ(z − lr_s v)/‖·‖, v projected to the new tangent space.
 */
export function sphereDescentBody(p: SphereDescentParams): string {
  const { layout: L, R, h, radius, momentum, lr, totalSteps, power, numSamples } = p;
  const N = L.N;
  const NH = N * h;
  return `struct Params { s0: u32, steps: u32, pad0: u32, pad1: u32 }
${flatHeader(R)}
  var zz: array<f32, ${NH}>;
  var vv: array<f32, ${NH}>;
  var gz: array<f32, ${NH}>;
  var y: array<i32, ${N}>;
  var cc: array<f32, ${N}>;
  var ex: array<f32, ${N}>;
  var gk: array<f32, ${N}>;
  for (var a = 0u; a < ${NH}u; a++) { zz[a] = z[g * ${NH}u + a]; vv[a] = vel[g * ${NH}u + a]; }
  for (var k = 0u; k < ${N}u; k++) { y[k] = labels[g * ${N}u + k]; }
  var loss = 0.0;
  for (var st = 0u; st < params.steps; st++) {
    let s = params.s0 + st;
    let frac = max(1.0 - f32(s) / ${f32Lit(totalSteps)}, 0.0);
    let lr = ${f32Lit(lr)} * ${power === 0 ? "1.0" : `pow(frac, ${f32Lit(power)})`};
    let t = samples[min(s, ${numSamples - 1}u)];
    let base = t * ${L.words}u;
${unpackLines(L, "base")}
${Array.from({ length: N }, (_, k) => `    cc[${k}] = c${k};`).join("\n")}
    for (var a = 0u; a < ${NH}u; a++) { gz[a] = 0.0; }
    loss = 0.0;
    for (var i = 0u; i < ${N}u; i++) {
      let ci = cc[i];
      if (ci < 0.5) { continue; }
      var np = 0.0;
      var m = -3.0e38;
      for (var k = 0u; k < ${N}u; k++) {
        var s2 = 0.0;
        for (var d = 0u; d < ${h}u; d++) { s2 = fma(zz[i * ${h}u + d], zz[k * ${h}u + d], s2); }
        gk[k] = s2;
        let q = cc[k] - select(0.0, 1.0, k == i);
        if (q > 0.5) { m = max(m, s2); }
        if (y[k] == y[i]) { np += q; }
      }
      if (np < 0.5) { continue; }
      var den = 0.0;
      var pos = 0.0;
      for (var k = 0u; k < ${N}u; k++) {
        let q = cc[k] - select(0.0, 1.0, k == i);
        ex[k] = exp(gk[k] - m);
        den = fma(q, ex[k], den);
        if (y[k] == y[i]) { pos = fma(q, gk[k], pos); }
      }
      loss += ci * (m + log(den) - pos / np);
      for (var k = 0u; k < ${N}u; k++) {
        let q = cc[k] - select(0.0, 1.0, k == i);
        let w = ci * q * (ex[k] / den - select(0.0, 1.0 / np, y[k] == y[i]));
        for (var d = 0u; d < ${h}u; d++) {
          gz[i * ${h}u + d] = fma(w, zz[k * ${h}u + d], gz[i * ${h}u + d]);
          gz[k * ${h}u + d] = fma(w, zz[i * ${h}u + d], gz[k * ${h}u + d]);
        }
      }
    }
    for (var i = 0u; i < ${N}u; i++) {
      let o = i * ${h}u;
      var gr = 0.0;
      for (var d = 0u; d < ${h}u; d++) { gr = fma(gz[o + d], zz[o + d], gr); }
      gr = gr / ${f32Lit(radius * radius)};
      var nn = 0.0;
      for (var d = 0u; d < ${h}u; d++) {
        let v = ${f32Lit(momentum)} * vv[o + d] + (gz[o + d] - gr * zz[o + d]);
        vv[o + d] = v;
        let zn = zz[o + d] - lr * v;
        zz[o + d] = zn;
        nn = fma(zn, zn, nn);
      }
      let scale = ${f32Lit(radius)} / max(sqrt(nn), 1e-30);
      var vr = 0.0;
      for (var d = 0u; d < ${h}u; d++) { zz[o + d] = zz[o + d] * scale; vr = fma(vv[o + d], zz[o + d], vr); }
      vr = vr / ${f32Lit(radius * radius)};
      for (var d = 0u; d < ${h}u; d++) { vv[o + d] = vv[o + d] - vr * zz[o + d]; }
    }
  }
  for (var a = 0u; a < ${NH}u; a++) { z[g * ${NH}u + a] = zz[a]; vel[g * ${NH}u + a] = vv[a]; }
  lossOut[g] = loss;
}`;
}
