/**
 * The autotuner (`engine/tune/`), on every WebGPU implementation (portable: `tests/harness.ts`): it picks a
 * planted fast candidate over a planted slow one and keeps a heuristic that is not beaten; its cache is
 * written, reused, and ignored for another adapter or engine version; a corrupt cache is replaced with a
 * warning; GEMMs run on a measured winner agree with float64.
 */
import assert from "node:assert/strict";
import { test } from "./harness.ts";
import { assertClose, randomArray, setup } from "./util.ts";
import { type Gpu } from "../engine/gpu.ts";
import { tensor } from "../engine/tensor.ts";
import { matmul } from "../engine/ops/matmul.ts";
import { runKernel, write } from "../engine/program.ts";
import { TUNING_FORMAT, TuningCache } from "../engine/tune/cache.ts";
import { memoryStore, type TuningStore } from "../engine/tune/store.ts";
import { resolveTuningMode } from "../engine/tune/mode.ts";
import type { TuneSite } from "../engine/tune/tuner.ts";
import { matmulRef } from "./reference/matmul_ref.ts";
import { conv2d } from "../engine/ops/conv.ts";
import { forceConvRoute } from "../engine/tune/conv_route_site.ts";
import { setGemmTiling } from "../engine/ops/matmul.ts";
import { REGISTER_TILING, SHARED_TILING } from "../shaders/gemm.ts";
import { conv2dGradInputRef, conv2dRef, type ConvDims } from "./reference/conv_ref.ts";

/** Runs `fn` with the device's tuner in `mode` on `store`, then restores mode "off" with a fresh store. */
async function withTuner(
  g: Gpu,
  mode: "cached" | "measure",
  store: TuningStore,
  fn: () => void | Promise<void>,
) {
  await g.tuner.open(mode, store);
  try {
    await fn();
  } finally {
    await g.tuner.open("off", memoryStore());
  }
}

/**
 * A site whose candidates each run `loops[id]` fused multiply-adds per invocation over 4096 invocations:
 * the candidate with the longer loop is slower on any adapter.
 */
function plantedSite(key: string, loops: Record<string, number>, heuristic: string): TuneSite {
  const g = () => globalThis as unknown as { __tuneGpu: Gpu };
  return {
    key,
    label: key,
    heuristic,
    candidates: Object.keys(loops),
    prepare() {
      const buffer = g().__tuneGpu.device.createBuffer({ size: 4096 * 4, usage: GPUBufferUsage.STORAGE });
      return {
        record(id: string) {
          runKernel({
            name: `tuning.planted.${id}`,
            bindings: [write("o", { buffer, offset: 0, size: 4096 * 4 })],
            body: `@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  var s = f32(id.x);
  for (var i = 0u; i < ${loops[id]}u; i = i + 1u) { s = fma(s, 0.999, 1.0); }
  o[id.x] = s;
}`,
            workgroups: [64],
          });
        },
        dispose: () => buffer.destroy(),
      };
    },
  };
}

test("tuning: picks a planted fast candidate over a slow heuristic, keeps an unbeaten heuristic", async () => {
  const g = await setup();
  (globalThis as unknown as { __tuneGpu: Gpu }).__tuneGpu = g;
  await withTuner(g, "measure", memoryStore(), async () => {
    const slowFirst = plantedSite("planted|slow-first", { slow: 20000, fast: 500 }, "slow");
    const fastFirst = plantedSite("planted|fast-first", { fast: 500, slow: 20000 }, "fast");
    assert.equal(g.tuner.choose(slowFirst), "slow", "unmeasured: the heuristic");
    assert.equal(g.tuner.choose(fastFirst), "fast");
    assert.equal(g.tuner.pendingCount, 2);
    const decisions = await g.tuner.measurePending();
    assert.equal(g.tuner.pendingCount, 0);
    const byLabel = Object.fromEntries(decisions.map((d) => [d.label, d]));
    const slow = byLabel["planted|slow-first"].entry!.ms;
    assert.ok(slow.fast! < slow.slow!, `fast ${slow.fast} ms should beat slow ${slow.slow} ms`);
    assert.equal(byLabel["planted|slow-first"].choice, "fast");
    const confirmed = byLabel["planted|slow-first"].entry!.verified;
    assert.ok(confirmed && confirmed.winner < confirmed.heuristic, "confirmed in alternation");
    assert.equal(
      byLabel["planted|fast-first"].entry!.verified,
      undefined,
      "an unbeaten heuristic needs none",
    );
    assert.equal(byLabel["planted|fast-first"].choice, "fast");
    assert.equal(g.tuner.choose(slowFirst), "fast", "measured: the winner");
    assert.equal(g.tuner.pendingCount, 0, "a measured site is not queued again");
  });
});

test("tuning: the cache is written, reused, and ignored for another adapter or engine version", async () => {
  const g = await setup();
  (globalThis as unknown as { __tuneGpu: Gpu }).__tuneGpu = g;
  const store = memoryStore();
  const site = plantedSite("planted|cache", { slow: 20000, fast: 500 }, "slow");
  await withTuner(g, "measure", store, async () => {
    g.tuner.choose(site);
    await g.tuner.measurePending();
  });
  const text = await store.load();
  assert.ok(text, "the cache was written");
  assert.equal(JSON.parse(text!).format, TUNING_FORMAT);
  await withTuner(g, "cached", store, () => {
    assert.equal(g.tuner.choose(site), "fast", "reused");
    assert.equal(g.tuner.pendingCount, 0);
    assert.equal(g.tuner.decisions()[0].source, "cached");
  });
  await withTuner(g, "measure", store, () => {
    assert.equal(g.tuner.choose(site), "fast", "a cached site is not measured again");
    assert.equal(g.tuner.pendingCount, 0);
  });
  const other = new TuningCache({ ...g.report, description: "another adapter", device: "1234" });
  assert.equal(other.load(text), null);
  assert.equal(other.get(site.key), undefined, "another adapter's entries are not used");
  const older = new TuningCache(g.report, "0.0.0-older");
  assert.equal(older.load(text), null);
  assert.equal(older.get(site.key), undefined, "another engine version's entries are not used");
  // Saving from another version keeps the other adapters' sections.
  const merged = JSON.parse(other.serialize(text));
  assert.equal(Object.keys(merged.adapters).length, 2);
});

test("tuning: a corrupt cache is replaced with a warning, never a crash", async () => {
  const g = await setup();
  for (
    const bad of [
      "{not json",
      '{"format":"something/else","adapters":{}}',
      '{"format":"' + TUNING_FORMAT + '","adapters":{"x":{"version":"1","entries":{"k":{"winner":3}}}}}',
    ]
  ) {
    const store = memoryStore();
    await store.save(bad);
    const warn = console.warn;
    const warnings: string[] = [];
    console.warn = (m: string) => warnings.push(m);
    try {
      await withTuner(g, "cached", store, () => {});
    } finally {
      console.warn = warn;
    }
    assert.equal(warnings.length, 1, `one warning for ${bad}`);
    assert.match(warnings[0], /corrupt.*replacing/);
    assert.equal(JSON.parse((await store.load())!).format, TUNING_FORMAT, "replaced by a valid empty cache");
  }
});

test("tuning: GEMMs on measured winners agree with float64; mode names are checked", async () => {
  const g = await setup();
  assert.equal(resolveTuningMode(undefined), "cached");
  assert.equal(resolveTuningMode(" measure "), "measure");
  assert.throws(
    () => resolveTuningMode("fast", "SUPCON_TUNING"),
    /SUPCON_TUNING="fast": expected one of off, cached, measure/,
  );
  const cap = g.tuner.capMs;
  g.tuner.capMs = 600_000; // every candidate, however slowly a software adapter compiles them
  await withTuner(g, "measure", memoryStore(), async () => {
    const [M, N, K] = [45, 67, 131];
    const a = randomArray(M * K, 1);
    const b = randomArray(K * N, 2);
    const ta = tensor(a, [M, K]);
    const tb = tensor(b, [K, N]);
    const first = matmul(ta, tb);
    assert.equal(g.tuner.pendingCount, 1);
    const [d] = await g.tuner.measurePending();
    assert.equal(d.source, "measured");
    assert.ok(Object.values(d.entry!.ms).filter((t) => t !== null).length >= 2, "several candidates timed");
    const tuned = matmul(ta, tb);
    const ref = matmulRef(a, b, { M, N, K });
    const tol = { rtol: 1e-4, atol: 1e-5 * Math.sqrt(K) };
    assertClose(await first.toArray(), ref, { ...tol, label: "heuristic" });
    assertClose(await tuned.toArray(), ref, { ...tol, label: `tuned (${d.choice})` });
    for (const t of [ta, tb, first, tuned]) t.dispose();
  }).finally(() => g.tuner.capMs = cap);
});

test({
  name: "tuning: both convolution routes (channels-last, im2col) agree with float64, forward and grad input",
  // Twenty-odd pipelines per strategy: in Chromium under the first strategy only (both tilings run anyway).
  dawn: "once",
  fn: async () => {
    await setup();
    const geometries: ConvDims[] = [
      { N: 2, C: 3, H: 9, W: 11, O: 8, KH: 3, KW: 3, stride: 1, pad: 1 }, // the stem: 3 channels, padded to 4
      { N: 3, C: 8, H: 10, W: 7, O: 12, KH: 3, KW: 2, stride: 2, pad: 1 }, // odd sizes, stride 2, 3×2
    ];
    let seed = 900;
    for (const tiling of [REGISTER_TILING, SHARED_TILING]) {
      setGemmTiling(tiling);
      try {
        for (const route of ["channels-last", "im2col"] as const) {
          forceConvRoute(route);
          try {
            for (const d of geometries) {
              const x = randomArray(d.N * d.C * d.H * d.W, seed++);
              const w = randomArray(d.O * d.C * d.KH * d.KW, seed++);
              const tx = tensor(x, [d.N, d.C, d.H, d.W], { requiresGrad: true });
              const tw = tensor(w, [d.O, d.C, d.KH, d.KW]);
              const y = conv2d(tx, tw, { stride: d.stride, padding: d.pad });
              const dy = randomArray(y.size, seed++);
              y.backward(tensor(dy, y.shape));
              const name = `${route}, ${tiling.useWorkgroupMemory ? "workgroup" : "register"} tiles, ${
                JSON.stringify(d)
              }`;
              const K = d.C * d.KH * d.KW;
              assertClose(await y.toArray(), conv2dRef(x, w, d), {
                rtol: 1e-4,
                atol: 1e-5 * Math.sqrt(K),
                label: `forward ${name}`,
              });
              assertClose(await tx.grad!.toArray(), conv2dGradInputRef(dy, w, d), {
                rtol: 1e-4,
                atol: 1e-5 * Math.sqrt(d.O * d.KH * d.KW),
                label: `grad input ${name}`,
              });
              for (const t of [tx, tw, y]) t.dispose();
            }
          } finally {
            forceConvRoute(null);
          }
        }
      } finally {
        setGemmTiling(null);
      }
    }
  },
});

test("tuning: a convolution's route is a tuning site, measured and cached like a GEMM's", async () => {
  const g = await setup();
  await withTuner(g, "measure", memoryStore(), async () => {
    const x = tensor(randomArray(2 * 8 * 12 * 12, 5), [2, 8, 12, 12]);
    const w = tensor(randomArray(8 * 8 * 3 * 3, 6), [8, 8, 3, 3]);
    const y = conv2d(x, w, { padding: 1 });
    const queued = g.tuner.pendingCount;
    assert.ok(queued >= 2, `the route and its GEMM queued (${queued})`);
    const decisions = await g.tuner.measurePending();
    const route = decisions.find((d) => d.label.includes("route"));
    assert.ok(route, "the route was measured");
    assert.deepEqual(Object.keys(route!.entry!.ms).sort(), ["channels-last", "im2col"]);
    for (const t of [x, w, y]) t.dispose();
  });
});
