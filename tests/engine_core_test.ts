import assert from "node:assert/strict";
import { empty, ShapeError, type Tensor, tensor, writeTensor } from "../engine/tensor.ts";
import { isGradEnabled, noGrad, record } from "../engine/autograd.ts";
import { addSame, fill } from "../engine/ops/core.ts";
import { keep, TensorScope, tidy } from "../engine/scope.ts";
import { sizeClass } from "../engine/buffer_pool.ts";
import { GpuError } from "../engine/device.ts";
import { setup } from "./util.ts";
import { test } from "./harness.ts";

/** A recorded test op: 2·x, built from the core add so autograd paths can be exercised. */
function twice(x: Tensor): Tensor {
  return record("twice", [x], addSame(x, x), (g) => [addSame(g, g)]);
}
/** A recorded test op: a + b (same shape). */
function plus(a: Tensor, b: Tensor): Tensor {
  return record("plus", [a, b], addSame(a, b), (g) => [g, g]);
}

test({
  name: "device report names the adapter and raised limits",
  async fn() {
    const g = await setup();
    assert.ok(g.report.name.length > 0);
    assert.equal(typeof g.report.isFallback, "boolean");
    assert.ok(g.report.limits.maxStorageBufferBindingSize >= 128 * 1024 * 1024);
    assert.ok(g.report.limits.maxComputeWorkgroupStorageSize >= 16384);
  },
});

test({
  name: "tensors round-trip f32, i32 and u32 data; shapes are checked",
  async fn() {
    await setup();
    const a = tensor([[1.5, -2], [3, 4]]);
    assert.deepEqual(a.shape, [2, 2]);
    assert.deepEqual([...await a.toArray()], [1.5, -2, 3, 4]);
    const b = tensor([-3, 7], [2], { dtype: "i32" });
    assert.deepEqual([...await b.toArray()], [-3, 7]);
    const c = tensor([4000000000], [1], { dtype: "u32" });
    assert.equal(await c.item(), 4000000000);
    assert.throws(() => tensor([1, 2, 3], [2, 2]), ShapeError);
    assert.throws(() => tensor([1, 2, 3], [2, 2]), /3 values do not fill shape \[2, 2\]/);
    writeTensor(a, [9, 8, 7, 6]);
    assert.deepEqual([...await a.toArray()], [9, 8, 7, 6]);
    for (const t of [a, b, c]) t.dispose();
  },
});

test({
  name: "poisoned outputs read NaN until written; fill writes every element",
  async fn() {
    await setup();
    const e = empty([1000]);
    assert.ok((await e.toArray()).every(Number.isNaN));
    const f = fill([70000], -0.25); // more than one workgroup row, not a multiple of 256
    assert.ok((await f.toArray()).every((v) => v === -0.25));
    e.dispose();
    f.dispose();
  },
});

test({
  name: "autograd sums gradients over a diamond and shared inputs, in topological order",
  async fn() {
    await setup();
    const x = tensor([1, 2, 3], [3], { requiresGrad: true });
    // y = 2x; z = y + y + x → dz/dx = 2·2 + 1 = 5 (x reached by three paths)
    const y = twice(x);
    const z = plus(plus(y, y), x);
    z.backward(fill([3], 1));
    assert.deepEqual([...await x.grad!.toArray()], [5, 5, 5]);
    // gradients accumulate across backward calls
    plus(x, x).backward(fill([3], 1));
    assert.deepEqual([...await x.grad!.toArray()], [7, 7, 7]);
    assert.throws(() => plus(x, x).backward(), /needs a gradient argument/);
    x.dispose();
  },
});

test({
  name: "noGrad records nothing",
  async fn() {
    await setup();
    const x = tensor([1], [1], { requiresGrad: true });
    const y = noGrad(() => {
      assert.equal(isGradEnabled(), false);
      return twice(x);
    });
    assert.equal(isGradEnabled(), true);
    assert.equal(y.requiresGrad, false);
    assert.equal(y.node, null);
    x.dispose();
    y.dispose();
  },
});

test({
  name: "tidy frees everything but its result; TensorScope and using free too; no leak over 100 steps",
  async fn() {
    const g = await setup();
    await g.sync();
    const before = g.memory().liveBuffers;
    const kept = tidy(() => {
      const a = fill([10], 1);
      const b = addSame(a, a);
      return { b, list: [addSame(b, a)] };
    });
    assert.equal(g.memory().liveBuffers, before + 2);
    assert.deepEqual([...await kept.list[0].toArray()], Array(10).fill(3));
    kept.b.dispose();
    kept.list[0].dispose();
    kept.b.dispose(); // idempotent
    assert.equal(g.memory().liveBuffers, before);
    {
      using s = new TensorScope();
      fill([5], 1);
      const k = keep(fill([5], 2));
      assert.equal(s.size, 1);
      k.dispose();
    }
    assert.equal(g.memory().liveBuffers, before);
    const w = tensor([1, 2, 3, 4], [4], { requiresGrad: true });
    const counts: number[] = [];
    for (let step = 0; step < 100; step++) {
      tidy(() => {
        const loss = plus(twice(w), w);
        loss.backward(fill([4], 1));
      });
      w.grad = undefined;
      if (step % 10 === 9) counts.push(g.memory().liveBuffers);
    }
    assert.deepEqual(counts, Array(10).fill(before + 1));
    const created = g.memory().created;
    tidy(() => plus(twice(w), w).backward(fill([4], 1)));
    assert.equal(g.memory().created, created, "pool reuses buffers instead of creating new ones");
    w.dispose();
  },
});

test({
  name: "using a disposed tensor names the tensor; a broken kernel names the kernel",
  async fn() {
    const g = await setup();
    const a = fill([3], 1);
    a.dispose();
    assert.throws(() => addSame(a, a), /was disposed/);
    const out = fill([4], 0);
    g.dispatch({ name: "deliberately.broken", code: "this is not wgsl" }, [out.range], [1]);
    await assert.rejects(
      () => g.sync(),
      (e: Error) => e instanceof GpuError && /deliberately\.broken/.test(e.message),
    );
    out.dispose();
  },
});

test("size classes waste at most 1/8 above 64 KiB and round small buffers to powers of two", () => {
  assert.equal(sizeClass(1), 256);
  assert.equal(sizeClass(300), 512);
  assert.equal(sizeClass(65536), 65536);
  for (const n of [65537, 100000, 1234567, 50_000_000]) {
    const c = sizeClass(n);
    assert.ok(c >= n && c <= n * 1.125 + 1, `${n} → ${c}`);
  }
});

test({
  name: "a training step is recorded without submits until read back",
  async fn() {
    const g = await setup();
    await g.sync();
    const submits = g.counters.submits;
    const x = tensor([1, 2], [2], { requiresGrad: true });
    const s2 = g.counters.submits; // the upload may flush pending work
    tidy(() => plus(twice(x), x).backward(fill([2], 1)));
    assert.equal(g.counters.submits, s2);
    assert.ok(s2 - submits <= 1);
    assert.deepEqual([...await x.grad!.toArray()], [3, 3]);
    x.dispose();
  },
});

test({
  name: "releaseData frees an intermediate early, keeps its autograd node, and refuses later reads",
  async fn() {
    const g = await setup();
    const x = tensor([1, 2, 3], [3], { requiresGrad: true });
    const live = g.memory().liveBuffers;
    const y = twice(x); // twice's backward does not read y
    const z = twice(y);
    y.releaseData();
    assert.equal(g.memory().liveBuffers, live + 1, "y's buffer went back to the pool");
    assert.throws(() => y.range, /was released after use/);
    z.backward(fill([3], 1));
    assert.deepEqual([...await x.grad!.toArray()], [4, 4, 4]);
    y.dispose(); // no double release
    z.dispose();
    x.dispose();
  },
});

test({
  name: "backward with releaseIntermediates frees interior tensors, keeps root, leaves and detached views",
  async fn() {
    const g = await setup();
    // w = 2·(2·y + y) with y = 2x, so dw/dx = 12; y feeds two consumers (a diamond).
    const graph = () => {
      const x = tensor([1, 2, 3], [3], { requiresGrad: true });
      const y = twice(x);
      const z = plus(twice(y), y);
      return { x, y, z, w: twice(z) };
    };
    const a = graph();
    const liveA = g.memory().liveBuffers;
    a.w.backward(fill([3], 1));
    const grewPlain = g.memory().liveBuffers - liveA;
    const b = graph();
    const kept = b.y.detach(); // another reference to y's storage keeps the data
    const liveB = g.memory().liveBuffers;
    b.w.backward(fill([3], 1), { releaseIntermediates: true });
    const grewReleased = g.memory().liveBuffers - liveB;
    // z and twice(y) go back to the pool; y's storage is still held by `kept`.
    assert.equal(grewReleased, grewPlain - 2, `live buffers grew ${grewReleased} vs ${grewPlain}`);
    assert.deepEqual([...await b.x.grad!.toArray()], [12, 12, 12]);
    assert.deepEqual([...await a.x.grad!.toArray()], [12, 12, 12]);
    assert.throws(() => b.z.range, /was released after use/);
    assert.throws(() => b.y.range, /was released after use/);
    assert.deepEqual([...await kept.toArray()], [2, 4, 6], "a detached view keeps the storage");
    assert.deepEqual([...await b.w.toArray()], [12, 24, 36], "the root stays readable");
    assert.deepEqual([...await b.x.toArray()], [1, 2, 3], "leaves stay readable");
    assert.deepEqual([...await a.z.toArray()], [6, 12, 18], "without the option nothing is released");
    [...Object.values(a), ...Object.values(b), kept].forEach((t) => t.dispose());
  },
});
