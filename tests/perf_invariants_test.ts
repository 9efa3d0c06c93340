/**
 * Performance invariants of a training step (no timing assertions; speed lives in `bench/`):
 * one submit and no readback per step, no pipeline recompiled and no bind group created on later
 * steps, live buffers flat across steps. Also the fused `addRelu` op against float64 and the opt-in
 * per-dispatch profiler.
 */
import assert, { strictEqual as assertEquals, throws as assertThrows } from "node:assert/strict";
import { assertClose, randomArray, resnetFixture, setup } from "./util.ts";
import { test } from "./harness.ts";
import { tensor, writeTensor } from "../engine/tensor.ts";
import { polynomialLr } from "../engine/optim/schedule.ts";
import { addRelu } from "../engine/ops/elementwise.ts";

test({
  name: "perf invariants: a ResNet-18 training step is one submit, no readback, nothing recompiled",
  async fn() {
    const g = await setup();
    // Batch 4, the shapes of memory_test's steps: in a page (one device for every test) the step's
    // pipelines are then compiled once, which is most of a step's cost on SwiftShader.
    const f = await resnetFixture(0.125, 4, 3);
    let t = 0;
    const step = () => {
      t++;
      // A new batch and a new learning rate every step, as in training: both are ordered writes.
      writeTensor(f.labels, [t % 10, (t + 3) % 10, (t + 5) % 10, (t + 7) % 10]);
      f.step({ releaseIntermediates: true, lr: polynomialLr(0.05, t, 100, 5) });
      g.flush();
    };
    // Step 1 compiles pipelines and sets up the momentum state; step 2 is the first regular step.
    for (let s = 0; s < 2; s++) {
      step();
      await g.sync();
    }
    const snapshots = [];
    for (let s = 0; s < 2; s++) {
      const c0 = { ...g.counters };
      const live0 = g.memory().liveBuffers;
      step();
      const c1 = { ...g.counters };
      await g.sync();
      snapshots.push({
        submits: c1.submits - c0.submits,
        readbacks: c1.readbacks - c0.readbacks,
        pipelines: c1.pipelines - c0.pipelines,
        dispatches: c1.dispatches - c0.dispatches,
        bindGroups: c1.bindGroupsCreated - c0.bindGroupsCreated,
        liveDelta: g.memory().liveBuffers - live0,
      });
    }
    for (const [k, s] of snapshots.entries()) {
      assertEquals(s.submits, 1, `step ${k + 3}: submits`);
      assertEquals(s.readbacks, 0, `step ${k + 3}: readbacks`);
      assertEquals(s.pipelines, 0, `step ${k + 3}: new pipelines`);
      assertEquals(s.liveDelta, 0, `step ${k + 3}: live buffers`);
      assertEquals(s.dispatches, snapshots[0].dispatches, `step ${k + 3}: dispatches`);
    }
    // Bind groups are cached by (pipeline, buffer, offset) and the pool hands each tensor the same
    // buffer every step (oldest free buffer first), so a repeated step creates none.
    for (const [k, s] of snapshots.entries()) assertEquals(s.bindGroups, 0, `step ${k + 3}: new bind groups`);
    f.dispose();
  },
});

test({
  name: "addRelu: forward and backward match float64 (7×13×5, not a multiple of 4); shape errors",
  async fn() {
    await setup();
    const shape = [7, 13, 5];
    const n = 7 * 13 * 5;
    const a = randomArray(n, 11);
    const b = randomArray(n, 12);
    const g = randomArray(n, 13);
    const ta = tensor(Float32Array.from(a), shape, { requiresGrad: true });
    const tb = tensor(Float32Array.from(b), shape, { requiresGrad: true });
    const y = addRelu(ta, tb);
    const yRef = Array.from(a, (v, i) => Math.max(v + b[i], 0));
    assertClose(await y.toArray(), yRef, { rtol: 1e-6, atol: 1e-6, label: "addRelu forward" });
    y.backward(tensor(Float32Array.from(g), shape));
    const gRef = Array.from(g, (v, i) => a[i] + b[i] > 0 ? v : 0);
    assertClose(await ta.grad!.toArray(), gRef, { rtol: 0, atol: 0, label: "d/da" });
    assertClose(await tb.grad!.toArray(), gRef, { rtol: 0, atol: 0, label: "d/db" });
    assertThrows(() => addRelu(ta, tensor(new Float32Array(n), [n])), /addRelu.*\[7, 13, 5\].*\[455\]/);
    for (const t of [ta, tb, y]) t.dispose();
  },
});

test({
  name: "gpu().profile: per-kernel times for every dispatch, then the normal path again",
  async fn() {
    const g = await setup();
    await g.profileReport();
    g.profile = true;
    const a = tensor(Float32Array.from(randomArray(1000, 5)), [1000]);
    const b = tensor(Float32Array.from(randomArray(1000, 6)), [1000]);
    const y = addRelu(a, b);
    const report = await g.profileReport();
    g.profile = false;
    const k = report.kernels.find((e) => e.name === "addRelu");
    assert(k !== undefined && k.count === 1 && k.ms >= 0, JSON.stringify(report));
    assert(report.dispatchMs >= k!.ms);
    const s0 = g.counters.submits;
    addRelu(a, b).dispose();
    g.flush();
    assertEquals(g.counters.submits - s0, 1);
    assertEquals((await g.profileReport()).kernels.length, 0);
    for (const t of [a, b, y]) t.dispose();
  },
});
