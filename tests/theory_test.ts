import assert from "node:assert/strict";
import {
  angleBetween,
  bigLog,
  ceBoundCorollary1,
  ceBoundCorollary2,
  ceBoundTheorem1,
  ceCorollary2Objective,
  ceLossF64,
  classMeans,
  forEachMultiset,
  gamma,
  gammaSimplex,
  gammaToClassMeans,
  lambdaFromWeightDecay,
  logMultichoose,
  multichoose,
  pairwiseGamma,
  regularSimplex,
  rW,
  scBound,
  scBoundIidExpectation,
  scLossAllMultisetsF64,
  scLossAtSimplex,
  scLossBatchF64,
  scLossOccurrencesF64,
  simplexInnerProduct,
  simplexInvariants,
} from "../theory/mod.ts";

// ---------- helpers ----------

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function gauss(rand: () => number): number {
  const u = 1 - rand(), v = rand();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

function randomOnSphere(rand: () => number, h: number, radius: number): number[] {
  const v = Array.from({ length: h }, () => gauss(rand));
  const n = Math.hypot(...v);
  return v.map((x) => (x / n) * radius);
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

function frob(W: number[][]): number {
  return Math.sqrt(W.reduce((s, r) => s + dot(r, r), 0));
}

function balancedLabels(N: number, K: number): number[] {
  return Array.from({ length: N }, (_, i) => i % K);
}

function assertClose(actual: number, expected: number, tol: number, what = ""): void {
  assert.ok(
    Math.abs(actual - expected) <= tol,
    `${what}: |${actual} - ${expected}| = ${Math.abs(actual - expected)} > ${tol}`,
  );
}

/** Theorem 2 total bound, as a double (small cases only). */
function scBoundTotal(N: number, K: number, b: number, rho2: number): number {
  return Math.exp(scBound({ N, K, b, rho2 }).logTotal);
}

// ---------- simplex ----------

Deno.test("regularSimplex: invariants for many (K, h, radius), incl. K = h+1 and h >> K", () => {
  const cases: [number, number, number][] = [
    [2, 1, 1],
    [2, 5, 3],
    [3, 2, 1],
    [3, 512, Math.sqrt(10)],
    [4, 3, 2],
    [10, 9, Math.sqrt(10)],
    [10, 512, 1],
    [100, 99, 1],
    [100, 512, Math.sqrt(10)],
    [7, 30, 0.01],
  ];
  for (const [K, h, rho] of cases) {
    const rows = regularSimplex(K, h, rho);
    assert.equal(rows.length, K);
    for (const r of rows) assert.equal(r.length, h);
    const inv = simplexInvariants(rows);
    const ip = simplexInnerProduct(K, rho);
    assertClose(ip, -(rho * rho) / (K - 1), 0, "inner product formula");
    assert.ok(inv.maxAbsSum <= 1e-14 * rho * K, `sum K=${K} h=${h}: ${inv.maxAbsSum}`);
    assertClose(inv.minNorm, rho, 1e-14 * rho, `min norm K=${K}`);
    assertClose(inv.maxNorm, rho, 1e-14 * rho, `max norm K=${K}`);
    assertClose(inv.minInner, ip, 1e-14 * rho * rho, `min inner K=${K}`);
    assertClose(inv.maxInner, ip, 1e-14 * rho * rho, `max inner K=${K}`);
    // coordinates beyond K-1 are zero
    for (const r of rows) for (let d = K - 1; d < h; d++) assert.equal(r[d], 0);
  }
});

Deno.test("regularSimplex: clear errors", () => {
  assert.throws(
    () => regularSimplex(5, 3),
    (e: Error) => e instanceof RangeError && /K=5/.test(e.message) && /h=3/.test(e.message),
  );
  assert.throws(() => regularSimplex(1, 3), /K must be an integer >= 2/);
  assert.throws(() => regularSimplex(3, 2, 0), /radius/);
  assert.throws(() => regularSimplex(2.5, 3), /K must be an integer/);
});

// ---------- CE bounds ----------

const LAMBDAS = [1e-12, 1e-6, 1e-3, 0.1, 1, 10, 1e6, 1e12];

Deno.test("rW solves 2λx = ρ/(exp(Kρx/(K-1)) + K - 1) to 1e-12 relative", () => {
  for (const K of [2, 3, 10, 100]) {
    for (const rho of [0.1, 1, Math.sqrt(10), 30]) {
      for (const lambda of LAMBDAS) {
        const x = rW(K, rho, lambda);
        assert.ok(x > 0 && Number.isFinite(x), `rW(${K}, ${rho}, ${lambda}) = ${x}`);
        const a = (K * rho) / (K - 1);
        const lhs = 2 * lambda * x;
        // right side in an overflow-safe form: ρ e^{-ax} / (1 + (K-1)e^{-ax})
        const rhs = (rho * Math.exp(-a * x)) / (1 + (K - 1) * Math.exp(-a * x));
        const rel = Math.abs(lhs - rhs) / lhs;
        assert.ok(rel <= 1e-12, `K=${K} rho=${rho} lambda=${lambda}: relative residual ${rel}`);
      }
    }
  }
});

Deno.test("rW: invalid lambda rejected; weight decay conversion", () => {
  assert.throws(() => rW(10, 1, 0), /lambda/);
  assert.throws(() => rW(10, 1, -1), /lambda/);
  assert.throws(() => rW(1, 1, 1), /K/);
  assert.equal(lambdaFromWeightDecay(1e-4), 5e-5);
  assert.throws(() => lambdaFromWeightDecay(0), /wd/);
});

Deno.test("Corollary 2 bound is the minimum over x of g(x) (dense grid + golden section)", () => {
  for (const K of [2, 10, 100]) {
    for (const rho of [1, Math.sqrt(10)]) {
      for (const lambda of [1e-6, 1e-3, 0.1, 1, 10]) {
        const { bound, rW: r } = ceBoundCorollary2(K, rho, lambda);
        const g = (x: number) => ceCorollary2Objective(K, rho, lambda, x);
        assert.equal(bound, g(r));
        const tol = 1e-14 * Math.max(1, Math.abs(bound));
        const xmax = 4 * r + 1;
        for (let i = 0; i <= 4000; i++) {
          const x = (xmax * i) / 4000;
          assert.ok(g(x) >= bound - tol, `K=${K} λ=${lambda}: g(${x}) = ${g(x)} < ${bound}`);
        }
        for (const f of [1 - 1e-3, 1 - 1e-6, 1 + 1e-6, 1 + 1e-3]) assert.ok(g(r * f) >= bound - tol);
        // golden section on [0, xmax]
        let lo = 0, hi = xmax;
        const phi = (Math.sqrt(5) - 1) / 2;
        for (let it = 0; it < 200; it++) {
          const x1 = hi - phi * (hi - lo), x2 = lo + phi * (hi - lo);
          if (g(x1) < g(x2)) hi = x2;
          else lo = x1;
        }
        const xs = 0.5 * (lo + hi);
        assert.ok(g(xs) >= bound - tol, `golden min ${g(xs)} < bound ${bound}`);
        assertClose(xs, r, 1e-6 * Math.max(1, r), "golden argmin vs rW");
      }
    }
  }
});

Deno.test("Theorem 1 / Corollaries attained at the simplex configuration (float64 CE, 1e-12)", () => {
  for (const [K, h] of [[2, 1], [3, 2], [4, 7], [10, 9], [10, 32]] as const) {
    for (const rho of [1, Math.sqrt(10)]) {
      const Zs = regularSimplex(K, h, rho);
      const unit = regularSimplex(K, h, 1);
      const n = 3;
      const labels = balancedLabels(n * K, K);
      const Z = labels.map((y) => Zs[y]);
      for (const r of [0.1, 1, 2.5, 7]) {
        const W = unit.map((row) => row.map((v) => v * r));
        const L = ceLossF64(Z, W, labels);
        const t1 = ceBoundTheorem1(K, rho, frob(W));
        const c1 = ceBoundCorollary1(K, rho, r);
        assertClose(L, t1, 1e-12 * Math.max(1, t1), `Th1 K=${K} r=${r}`);
        assertClose(L, c1, 1e-12 * Math.max(1, c1), `Cor1 K=${K} r=${r}`);
      }
      for (const lambda of [1e-4, 0.05, 1]) {
        const { bound, rW: r } = ceBoundCorollary2(K, rho, lambda);
        const W = unit.map((row) => row.map((v) => v * r));
        const F = frob(W);
        const obj = ceLossF64(Z, W, labels) + lambda * F * F;
        assertClose(obj, bound, 1e-12 * Math.max(1, bound), `Cor2 K=${K} λ=${lambda}`);
      }
    }
  }
});

Deno.test("Theorem 1 / Corollaries: random and near-optimal configurations never fall below", () => {
  const rand = mulberry32(12345);
  let checks = 0;
  for (let trial = 0; trial < 3000; trial++) {
    const K = 2 + Math.floor(rand() * 5);
    const h = K - 1 + Math.floor(rand() * 4);
    const n = 1 + Math.floor(rand() * 3);
    const rho = 0.2 + 3 * rand();
    const labels = balancedLabels(n * K, K);
    let Z: number[][], W: number[][];
    if (trial % 3 === 0) {
      // perturbation of the optimum
      const Zs = regularSimplex(K, h, rho), U = regularSimplex(K, h, 1);
      const eps = 10 ** (-1 - 4 * rand());
      const r = 3 * rand();
      Z = labels.map((y) => {
        const v = Zs[y].map((x) => x + eps * gauss(rand));
        const nv = Math.hypot(...v);
        return nv > rho ? v.map((x) => (x / nv) * rho) : v;
      });
      W = U.map((row) => row.map((x) => r * x + eps * gauss(rand)));
    } else {
      Z = labels.map(() => randomOnSphere(rand, h, rho * (trial % 3 === 1 ? 1 : Math.pow(rand(), 1 / h))));
      const s = 5 * rand();
      W = Array.from({ length: K }, () => Array.from({ length: h }, () => s * gauss(rand)));
    }
    const L = ceLossF64(Z, W, labels);
    const F = frob(W);
    const maxRow = Math.max(...W.map((r) => Math.hypot(...r)));
    const tol = 1e-12;
    assert.ok(L >= ceBoundTheorem1(K, rho, F) - tol, `Th1 trial ${trial}`);
    assert.ok(L >= ceBoundCorollary1(K, rho, maxRow) - tol, `Cor1 trial ${trial}`);
    const lambda = 10 ** (-4 + 4 * rand());
    assert.ok(L + lambda * F * F >= ceBoundCorollary2(K, rho, lambda).bound - tol, `Cor2 trial ${trial}`);
    checks += 3;
  }
  assert.equal(checks, 9000);
});

Deno.test("ceLossF64 keeps relative accuracy for tiny losses", () => {
  // Two classes, logits +t and -t: loss = log1p(e^{-2t}).
  const t = 30;
  const L = ceLossF64([[1]], [[t], [-t]], [0]);
  assertClose(L, Math.log1p(Math.exp(-2 * t)), 1e-15 * Math.exp(-2 * t), "tiny CE");
  const L2 = ceLossF64([[1]], [[t], [-t]], [1]);
  assertClose(L2, 2 * t + Math.log1p(Math.exp(-2 * t)), 1e-13, "large CE");
});

// ---------- SC loss reference ----------

Deno.test("scLossOccurrencesF64: multiset semantics, 0/0 = 0, matches hand computation", () => {
  const rho = 1.7;
  const z0 = [rho, 0], z1 = [0, rho], z2 = [rho * Math.cos(2), rho * Math.sin(2)];
  const Z = [z0, z1, z2];
  const labels = [0, 1, 0];
  // batch {{0, 0, 1}}: the two copies of 0 are positives of each other; 1 is alone (contributes 0)
  const s00 = dot(z0, z0), s01 = dot(z0, z1);
  const anchor0 = Math.log(Math.exp(s00) + Math.exp(s01)) - s00;
  assertClose(scLossBatchF64(Z, labels, [0, 0, 1]), 2 * anchor0, 1e-13, "dup batch");
  // batch {{0, 1, 2}}
  const s02 = dot(z0, z2), s12 = dot(z1, z2);
  const a0 = Math.log(Math.exp(s01) + Math.exp(s02)) - s02;
  const a2 = Math.log(Math.exp(s02) + Math.exp(s12)) - s02;
  const r = scLossOccurrencesF64([z0, z1, z2], [0, 1, 0]);
  assertClose(r.perAnchor[0], a0, 1e-13);
  assert.equal(r.perAnchor[1], 0);
  assertClose(r.perAnchor[2], a2, 1e-13);
  assertClose(r.loss, a0 + a2, 1e-13);
  // all different classes: 0
  assert.equal(scLossBatchF64(Z, [0, 1, 2], [0, 1, 2]), 0);
  // flat Float32Array input gives the same result as rows
  const flat = new Float32Array([...z0, ...z1, ...z2]);
  const rows32 = [0, 1, 2].map((i) => Array.from(flat.subarray(2 * i, 2 * i + 2)));
  assertClose(
    scLossBatchF64({ data: flat, dim: 2 }, labels, [0, 1, 2, 2]),
    scLossBatchF64(rows32, labels, [0, 1, 2, 2]),
    0,
  );
});

Deno.test("scLossOccurrencesF64: large rho² (masked log-sum-exp stays finite and exact)", () => {
  const rho2 = 1000;
  const K = 3, h = 2;
  const S = regularSimplex(K, h, Math.sqrt(rho2));
  const labels = [0, 0, 1, 2, 2, 2];
  const U = labels.map((y) => S[y]);
  const got = scLossOccurrencesF64(U, labels).loss;
  const expect = scLossAtSimplex([2, 1, 3], rho2);
  assertClose(got, expect, 1e-9, "rho2=1000");
});

Deno.test("scLossOccurrencesF64: gradient matches central finite differences", () => {
  const rand = mulberry32(7);
  const b = 7, h = 4;
  const labels = [0, 1, 0, 2, 1, 0, 1];
  const U = Array.from({ length: b }, () => randomOnSphere(rand, h, 2));
  const { grad } = scLossOccurrencesF64(U, labels, { grad: true });
  assert.ok(grad);
  const eps = 1e-6;
  for (let p = 0; p < b; p++) {
    for (let d = 0; d < h; d++) {
      const up = U.map((r) => r.slice()), dn = U.map((r) => r.slice());
      up[p][d] += eps;
      dn[p][d] -= eps;
      const fd = (scLossOccurrencesF64(up, labels).loss - scLossOccurrencesF64(dn, labels).loss) / (2 * eps);
      assertClose(grad[p][d], fd, 1e-7, `grad[${p}][${d}]`);
    }
  }
});

// ---------- Theorem 2 ----------

Deno.test("forEachMultiset enumerates C(N+b-1, b) sorted multisets; multichoose/logMultichoose agree", () => {
  for (const [N, b] of [[1, 3], [4, 3], [6, 4], [5, 5]]) {
    let count = 0;
    const seen = new Set<string>();
    forEachMultiset(N, b, (idx) => {
      for (let t = 1; t < b; t++) assert.ok(idx[t - 1] <= idx[t]);
      seen.add(Array.from(idx).join(","));
      count++;
    });
    assert.equal(BigInt(count), multichoose(N, b));
    assert.equal(seen.size, count);
  }
  assert.equal(multichoose(12, 9), 167960n);
  for (const [n, m] of [[12, 9], [50000, 256], [7, 0], [1, 10], [5000, 256]]) {
    const exact = bigLog(multichoose(n, m));
    assertClose(logMultichoose(n, m), exact, 1e-13 * Math.max(1, exact), `logMultichoose(${n},${m})`);
  }
});

const BRUTE_CASES: { N: number; K: number; b: number }[] = [
  { N: 4, K: 2, b: 3 },
  { N: 6, K: 3, b: 3 },
  { N: 6, K: 3, b: 4 },
  { N: 6, K: 2, b: 4 },
  { N: 4, K: 2, b: 2 },
  { N: 8, K: 4, b: 5 },
];

Deno.test("Theorem 2: brute force over all multisets equals the bound at the simplex (1e-10)", () => {
  for (const { N, K, b } of BRUTE_CASES) {
    for (const rho2 of [0.5, 1, 10]) {
      for (const h of [K - 1, K + 2]) {
        const S = regularSimplex(K, h, Math.sqrt(rho2));
        const labels = balancedLabels(N, K);
        const Z = labels.map((y) => S[y]);
        const brute = scLossAllMultisetsF64(Z, labels, b);
        const r = scBound({ N, K, b, rho2 });
        assert.equal(BigInt(brute.count), r.numBatches);
        assertClose(
          brute.mean,
          r.mean,
          1e-10 * Math.max(1, r.mean),
          `mean N=${N} K=${K} b=${b} rho2=${rho2}`,
        );
        const total = scBoundTotal(N, K, b, rho2);
        assertClose(brute.total, total, 1e-10 * Math.max(1, total), `total N=${N} K=${K} b=${b}`);
        // per batch: the counts formula equals the brute-force batch loss
        forEachMultiset(N, b, (idx) => {
          const counts = new Array(K).fill(0);
          for (const i of idx) counts[labels[i]]++;
          const v = scLossBatchF64(Z, labels, idx);
          assertClose(scLossAtSimplex(counts, rho2), v, 1e-10 * Math.max(1, v), "scLossAtSimplex");
        });
      }
    }
  }
});

Deno.test("Theorem 2: random and near-simplex configurations on the sphere are >= the bound", () => {
  const rand = mulberry32(2021);
  for (const { N, K, b } of BRUTE_CASES) {
    for (let trial = 0; trial < 12; trial++) {
      const rho2 = [0.5, 1, 4][trial % 3];
      const rho = Math.sqrt(rho2);
      const h = K - 1 + (trial % 2 === 0 ? 0 : 2);
      const labels = balancedLabels(N, K);
      let Z: number[][];
      if (trial < 6) {
        Z = labels.map(() => randomOnSphere(rand, h, rho));
      } else {
        const S = regularSimplex(K, h, rho);
        const eps = 10 ** (-1 - 3 * rand());
        Z = labels.map((y) => {
          const v = S[y].map((x) => x + eps * gauss(rand));
          const n = Math.hypot(...v);
          return v.map((x) => (x / n) * rho);
        });
      }
      const brute = scLossAllMultisetsF64(Z, labels, b);
      const total = scBoundTotal(N, K, b, rho2);
      assert.ok(
        brute.total >= total - 1e-10 * total,
        `N=${N} K=${K} b=${b} trial=${trial}: ${brute.total} < ${total}`,
      );
    }
  }
});

Deno.test("Theorem 2: paper value N=12, K=3, b=9, rho2=1 -> 12.12015 (also by brute force)", () => {
  const r = scBound({ N: 12, K: 3, b: 9, rho2: 1 });
  assert.equal(r.method, "exact");
  assert.equal(r.numBatches, 167960n);
  assert.equal(r.mean.toPrecision(7), "12.12015");
  // brute force over all 167,960 multisets at the simplex on S^1
  const S = regularSimplex(3, 2, 1);
  const labels = balancedLabels(12, 3);
  const brute = scLossAllMultisetsF64(labels.map((y) => S[y]), labels, 9);
  assert.equal(brute.count, 167960);
  assertClose(brute.mean, r.mean, 1e-10 * r.mean, "brute force 12.12015");
});

Deno.test("Theorem 2: paper value N=50000, K=10, b=256, rho2=10 -> 824.487", () => {
  const r = scBound({ N: 50000, K: 10, b: 256, rho2: 10 });
  assert.equal(r.mean.toPrecision(6), "824.487");
  assert.equal(r.method, "log");
  const e = scBound({ N: 50000, K: 10, b: 256, rho2: 10, method: "exact" });
  assert.equal(e.mean.toPrecision(6), "824.487");
  assertClose(r.logNumBatches, e.logNumBatches, 1e-12 * e.logNumBatches, "log |B|");
});

Deno.test("Theorem 2: exact BigInt and log-space agree", () => {
  const cases = [
    { N: 12, K: 3, b: 9, rho2: 1 },
    { N: 6, K: 3, b: 4, rho2: 10 },
    { N: 100, K: 10, b: 32, rho2: 10 },
    { N: 1000, K: 100, b: 128, rho2: 2 },
    { N: 50000, K: 10, b: 256, rho2: 10 },
    { N: 50000, K: 100, b: 512, rho2: 10 },
    { N: 30, K: 3, b: 2, rho2: 1 },
  ];
  for (const p of cases) {
    const e = scBound({ ...p, method: "exact" });
    const l = scBound({ ...p, method: "log" });
    assert.equal(e.method, "exact");
    assert.equal(l.method, "log");
    assert.equal(l.numBatches, null);
    assertClose(l.mean, e.mean, 1e-12 * Math.max(1, e.mean), `mean ${JSON.stringify(p)}`);
    assertClose(l.logNumBatches, e.logNumBatches, 1e-12 * Math.max(1, e.logNumBatches), "log|B|");
    assert.equal(e.terms.length, p.b - 1);
    let wsum = 0;
    for (let i = 0; i < e.terms.length; i++) {
      const te = e.terms[i], tl = l.terms[i];
      assert.equal(te.l, i + 2);
      assert.ok(te.M !== undefined && te.M > 0n);
      assertClose(tl.logM, te.logM, 1e-12 * Math.max(1, Math.abs(te.logM)), `logM_${te.l}`);
      assertClose(tl.weight, te.weight, 1e-11 * te.weight + 1e-300, `weight_${te.l}`);
      wsum += te.weight;
    }
    // Σ_l M_l over l = 0..b equals K|B|; the l = 0, 1 terms are missing here, so the sum is below K
    assert.ok(wsum <= p.K + 1e-12);
  }
  // b = 2: the bound is 0 (log 1), logTotal = -Infinity
  const z = scBound({ N: 30, K: 3, b: 2, rho2: 1 });
  assert.equal(z.mean, 0);
  assert.equal(z.logTotal, -Infinity);
});

Deno.test("Theorem 2: invalid parameters throw RangeError naming the problem", () => {
  assert.throws(() => scBound({ N: 13, K: 3, b: 9, rho2: 1 }), /divisible/);
  assert.throws(() => scBound({ N: 12, K: 3, b: 1, rho2: 1 }), /b must be/);
  assert.throws(() => scBound({ N: 12, K: 1, b: 3, rho2: 1 }), /K must be/);
  assert.throws(() => scBound({ N: 12, K: 3, b: 3, rho2: 0 }), /rho2/);
  assert.throws(() => scBoundIidExpectation({ N: 10, K: 3, b: 3, rho2: 1 }), /divisible/);
});

Deno.test("i.i.d. expectation equals exact enumeration over all ordered draws (tiny cases)", () => {
  for (
    const { N, K, b } of [{ N: 4, K: 2, b: 5 }, { N: 6, K: 3, b: 4 }, { N: 6, K: 2, b: 3 }, {
      N: 8,
      K: 4,
      b: 5,
    }]
  ) {
    for (const rho2 of [1, 10]) {
      const S = regularSimplex(K, K - 1, Math.sqrt(rho2));
      const labels = balancedLabels(N, K);
      const Z = labels.map((y) => S[y]);
      const idx = new Array(b).fill(0);
      let total = 0, count = 0;
      while (true) {
        total += scLossBatchF64(Z, labels, idx);
        count++;
        let t = b - 1;
        while (t >= 0 && idx[t] === N - 1) idx[t--] = 0;
        if (t < 0) break;
        idx[t]++;
      }
      assert.equal(count, N ** b);
      const expect = scBoundIidExpectation({ N, K, b, rho2 });
      assertClose(
        total / count,
        expect,
        1e-10 * Math.max(1, expect),
        `iid N=${N} K=${K} b=${b} rho2=${rho2}`,
      );
    }
  }
});

Deno.test("i.i.d. expectation: Monte Carlo for the CIFAR-10 setting, and differs from the multiset mean", () => {
  const K = 10, b = 256, rho2 = 10, N = 50000;
  const expect = scBoundIidExpectation({ N, K, b, rho2 });
  const rand = mulberry32(99);
  const trials = 4000;
  let s = 0, s2 = 0;
  const labels = balancedLabels(N, K);
  for (let t = 0; t < trials; t++) {
    const counts = new Array(K).fill(0);
    for (let j = 0; j < b; j++) counts[labels[Math.floor(rand() * N)]]++;
    const v = scLossAtSimplex(counts, rho2);
    s += v;
    s2 += v * v;
  }
  const mean = s / trials;
  const se = Math.sqrt((s2 / trials - mean * mean) / trials);
  assert.ok(Math.abs(mean - expect) <= 5 * se, `MC ${mean} ± ${se} vs ${expect}`);
  const multiset = scBound({ N, K, b, rho2 }).mean;
  assert.ok(expect < multiset && multiset - expect < 0.1, `iid ${expect} vs multiset ${multiset}`);
});

// ---------- gamma ----------

Deno.test("gamma: resolves angles of 1e-6 rad near 1, antiparallel near 0, simplex value", () => {
  for (const theta of [1e-6, 1e-8, 3e-5]) {
    const x = [1, 0, 0], y = [Math.cos(theta), Math.sin(theta), 0];
    assertClose(angleBetween(x, y), theta, 1e-9 * theta, `angle ${theta}`);
    const g = gamma(x, y);
    assert.ok(g < 1, `gamma(${theta}) must be < 1`);
    // γ itself is a double near 1: its absolute resolution is one ulp of 1 (2.2e-16).
    assertClose(1 - g, theta / Math.PI, 2.3e-16, `1-gamma ${theta}`);
    // scale invariance, Float32Array input
    assertClose(gamma(x.map((v) => 7 * v), y.map((v) => 0.01 * v)), g, 1e-15);
  }
  const d = 1e-6;
  assertClose(gamma([1, 0], [-Math.cos(d), Math.sin(d)]), d / Math.PI, 1e-9 * d, "antiparallel");
  assert.equal(gamma([1, 2, 3], [1, 2, 3]), 1);
  assertClose(gamma([1, 0], [0, 1]), 0.5, 1e-15);
  for (const K of [2, 3, 10, 100]) {
    const g = gammaSimplex(K);
    const pg = pairwiseGamma(regularSimplex(K, K + 3, 2.5));
    assert.equal(pg.length, (K * (K - 1)) / 2);
    for (const v of pg) assertClose(v, g, 1e-13, `simplex gamma K=${K}`);
  }
  assertClose(gammaSimplex(2), 0, 1e-15);
  assertClose(gammaSimplex(3), 1 - 2 / 3, 1e-15);
  assert.throws(() => gamma([0, 0], [1, 0]), /zero/);
  assert.throws(() => gammaSimplex(1), /K/);
});

Deno.test("classMeans / gammaToClassMeans / pairwiseGamma accept rows and flat Float32Array", () => {
  const K = 4, h = 6, n = 5;
  const S = regularSimplex(K, h, 3);
  const rand = mulberry32(5);
  const labels = balancedLabels(n * K, K);
  const rows = labels.map((y) => S[y].map((v) => v + 0.01 * gauss(rand)));
  const flat = new Float32Array(rows.flat());
  const m1 = classMeans(rows, labels);
  const m2 = classMeans({ data: flat, dim: h }, labels, K);
  assert.equal(m1.length, K);
  for (let y = 0; y < K; y++) {
    for (let d = 0; d < h; d++) {
      let s = 0;
      for (let i = 0; i < labels.length; i++) if (labels[i] === y) s += rows[i][d];
      assertClose(m1[y][d], s / n, 1e-14);
      assertClose(m2[y][d], s / n, 1e-6);
    }
  }
  const g1 = gammaToClassMeans(rows, labels);
  const g2 = gammaToClassMeans({ data: flat, dim: h }, labels);
  assert.equal(g1.length, labels.length);
  for (let i = 0; i < g1.length; i++) {
    assert.ok(g1[i] > 0.99 && g1[i] <= 1);
    assertClose(g2[i], g1[i], 1e-6);
  }
  const pg = pairwiseGamma(m1);
  for (const v of pg) assertClose(v, gammaSimplex(K), 0.01);
  // collapse: gamma to class means exactly 1
  const collapsed = labels.map((y) => S[y]);
  for (const v of gammaToClassMeans(collapsed, labels)) assertClose(v, 1, 1e-15);
  assert.throws(() => classMeans(rows, labels, K + 1), /class 4 has no rows/);
  assert.throws(() => classMeans({ data: flat, dim: 7 }, labels), /multiple of dim/);
});
