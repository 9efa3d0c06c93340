/**
 * The buffer pool's reuse policy and the `Gpu.dryRun` accounting mode used by `bench/memory_step.ts`.
 */
import assert from "node:assert/strict";
import { BufferPool, REUSE_SLACK, sizeClass } from "../engine/buffer_pool.ts";
import type { Gpu } from "../engine/gpu.ts";
import { tensor } from "../engine/tensor.ts";
import { tidy } from "../engine/scope.ts";
import { crossEntropy } from "../engine/ops/loss.ts";
import { ResNet18 } from "../models/resnet.ts";
import { LinearClassifier } from "../models/classifier.ts";
import { randomArray, resnetFixture, setup } from "./util.ts";
import { test } from "./harness.ts";

const MiB = 2 ** 20;

test({
  name: "pool: a large request reuses the smallest free buffer within REUSE_SLACK of its class",
  async fn() {
    const g = await setup();
    const pool = new BufferPool(g.device);
    const acquired: GPUBuffer[] = [];
    const take = (bytes: number, upload = false) => {
      const b = pool.acquire(bytes, upload);
      acquired.push(b);
      return b;
    };
    assert.equal(REUSE_SLACK, 9 / 8);
    const nine = take(9 * MiB);
    const nineToo = take(9 * MiB);
    const eight = take(8 * MiB);
    pool.release(nineToo);
    pool.release(nine);
    pool.release(eight);
    let created = pool.stats().created;
    // Exact class first, then a larger class within 9/8, oldest buffer first within a class.
    assert.equal(take(8 * MiB), eight);
    assert.equal(take(8 * MiB), nine, "9 MiB is exactly 9/8 of 8 MiB; the older 9 MiB buffer first");
    assert.equal(take(8 * MiB), nineToo);
    assert.equal(pool.stats().created, created, "no buffer created while one within the slack was free");
    assert.equal(pool.stats().liveBytes, 26 * MiB, "live bytes count the whole reused buffers");
    assert.equal(pool.stats().pooledBytes, 0);
    pool.release(nine);
    // 9 MiB is more than 9/8 of 7.5 MiB: a new buffer.
    const small = take(7.5 * MiB);
    assert.notEqual(small, nine);
    assert.equal(pool.stats().created, ++created);
    pool.release(small);
    // Up to 64 KiB only the exact class is reused (73728 = 9/8 · 65536 would otherwise fit).
    const big = take(sizeClass(69000));
    assert.equal(big.size, 73728);
    pool.release(big);
    assert.notEqual(take(65536), big);
    // Uploads never take a buffer released since the last submit, through the slack either.
    const upload = take(8 * MiB, true);
    assert.ok(![nine, small].includes(upload), "upload took a buffer released before the submit");
    pool.onSubmit();
    assert.equal(take(8 * MiB, true), nine, "after the submit the 9 MiB buffer may receive an upload");
    pool.trim();
    for (const b of new Set(acquired)) b.destroy();
  },
});

/** Every acquire, release and submit the pool sees, with buffers named by first appearance. */
function recordPool(g: Gpu): { events: string[]; stop: () => void } {
  const pool = g.pool;
  const { acquire, release, onSubmit } = pool;
  const names = new Map<GPUBuffer, number>();
  const name = (b: GPUBuffer) => {
    if (!names.has(b)) names.set(b, names.size);
    return names.get(b)!;
  };
  const events: string[] = [];
  pool.acquire = (bytes, forUpload) => {
    const created = pool.stats().created;
    const b = acquire.call(pool, bytes, forUpload);
    const s = pool.stats();
    events.push(
      `acquire ${bytes} ${forUpload} → #${name(b)} ${b.size} new=${s.created > created} ${s.totalBytes}`,
    );
    return b;
  };
  pool.release = (b) => {
    release.call(pool, b);
    events.push(`release #${name(b)} ${pool.stats().liveBytes}`);
  };
  pool.onSubmit = () => {
    onSubmit.call(pool);
    events.push("submit");
  };
  const stop = () => {
    pool.acquire = acquire;
    pool.release = release;
    pool.onSubmit = onSubmit;
  };
  return { events, stop };
}

/** One ResNet-18 training step (width 1/8, batch 4) from a trimmed pool, recorded; then disposed. */
async function recordedStep(g: Gpu, dryRun: boolean) {
  const f = await resnetFixture(0.125, 4, 1);
  await g.sync();
  g.pool.trim();
  g.pool.resetPeak();
  const before = g.memory();
  const recording = recordPool(g);
  g.dryRun = dryRun;
  try {
    f.step();
    await g.sync();
  } finally {
    g.dryRun = false;
    recording.stop();
  }
  const after = g.memory();
  f.dispose();
  await g.sync();
  g.pool.trim();
  return { before, after, events: recording.events };
}

test({
  name: "dryRun: a training step's pool bookkeeping and peaks equal the real step's exactly",
  async fn() {
    const g = await setup();
    await recordedStep(g, true); // compile every pipeline once, so both runs below start alike
    const dispatches = g.counters.dispatches;
    const real = await recordedStep(g, false);
    const perStep = g.counters.dispatches - dispatches;
    const dry = await recordedStep(g, true);
    assert.ok(real.events.length > 300, `${real.events.length} pool events`);
    assert.ok(real.events.some((e) => e.includes("new=false")), "the step reuses buffers");
    assert.ok(real.events.filter((e) => e === "submit").length >= 1);
    assert.deepEqual(dry.events, real.events);
    assert.equal(g.counters.dispatches - dispatches, 2 * perStep, "dispatches are still counted");
    for (const k of ["liveBytes", "peakLiveBytes", "peakTotalBytes", "totalBytes", "liveBuffers"] as const) {
      assert.equal(dry.before[k], real.before[k], `before: ${k}`);
      assert.equal(dry.after[k], real.after[k], `after: ${k}`);
    }
    assert.ok(real.after.peakTotalBytes > real.before.totalBytes);
  },
});

test({
  name: "a repeated step (dry run) creates no buffers and no bind groups after the first",
  async fn() {
    const g = await setup();
    const f = await resnetFixture(0.125, 4, 3); // recordedStep's shapes: its pipelines are reused
    g.dryRun = true;
    try {
      const counts: number[][] = [];
      for (let step = 0; step < 3; step++) {
        f.step({ releaseIntermediates: true });
        await g.sync();
        counts.push([g.memory().created, g.counters.bindGroupsCreated, g.memory().peakTotalBytes]);
      }
      assert.deepEqual(counts[2], counts[1]);
    } finally {
      g.dryRun = false;
    }
    f.dispose();
  },
});

test({
  name: "backward with releaseIntermediates: identical ResNet-18 gradients, lower live peak",
  async fn() {
    const g = await setup();
    const x = tensor(randomArray(4 * 3 * 32 * 32, 11), [4, 3, 32, 32]);
    const labels = tensor([3, 1, 4, 1], [4], { dtype: "i32" });
    const run = async (releaseIntermediates: boolean) => {
      const model = new ResNet18({ width: 0.125, seed: 5 });
      const head = new LinearClassifier(model.featureDim, 10, { seed: 6 });
      const params = [...model.parameters(), ...head.parameters()];
      await g.sync();
      g.pool.resetPeak();
      // Above what is live before the step (parameters, and whatever earlier tests on this device hold:
      // in a page every test shares one device), so the comparison does not depend on test order.
      const base = g.memory().liveBytes;
      tidy(() => {
        const loss = crossEntropy(head.forward(model.forward(x)), labels);
        loss.backward(undefined, { releaseIntermediates });
      });
      const peak = g.memory().peakLiveBytes - base;
      const grads = await Promise.all(params.map((p) => p.grad!.toArray()));
      for (const t of [...params, ...model.buffers()]) t.dispose();
      return { peak, grads };
    };
    const plain = await run(false);
    const released = await run(true);
    assert.equal(released.grads.length, plain.grads.length);
    released.grads.forEach((gr, i) => assert.deepEqual(gr, plain.grads[i], `gradient ${i}`));
    assert.ok(
      released.peak < 0.9 * plain.peak,
      `step's live peak ${released.peak} B with release vs ${plain.peak} B without`,
    );
    x.dispose();
    labels.dispose();
  },
});
