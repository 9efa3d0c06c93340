import assert from "node:assert/strict";
import {
  balancedSubset,
  channelMeanStd,
  CIFAR100_RECORD_BYTES,
  cifar100Dataset,
  CIFAR10_RECORD_BYTES,
  cifar10Dataset,
  classCounts,
  corruptionCount,
  corruptLabels,
  encodeCifar100File,
  encodeCifar10Batch,
  encodeIdx,
  EpochSampler,
  fashionMnistDataset,
  firstN,
  gunzip,
  gzip,
  idxDataset,
  IidSampler,
  makeSampler,
  parseCifar10Batch,
  parseClassNames,
  Rng,
  type RngState,
  type SamplerState,
  subset,
  syntheticDataset,
  validateDataset,
} from "../data/mod.ts";
import {
  findFashionMnist,
  loadCifar10,
  loadCifar100,
  loadFashionMnist,
  loadIdxDataset,
  readIdx,
  writeCifar100File,
  writeCifar10Batch,
  writeIdx,
} from "../data/files.ts";

const CIFAR10_DIR = "/work/shared/data/cifar-10-batches-bin";

function dirExists(p: string): boolean {
  try {
    return Deno.statSync(p).isDirectory;
  } catch {
    return false;
  }
}

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "data_test_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function randomBytes(n: number, seed: number): Uint8Array {
  const r = new Rng(seed);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = r.nextU32() & 255;
  return out;
}

async function rejectsWith(p: Promise<unknown>, ...parts: string[]): Promise<string> {
  try {
    await p;
  } catch (e) {
    const msg = (e as Error).message;
    for (const part of parts) {
      assert.ok(msg.includes(part), `message ${JSON.stringify(msg)} lacks ${JSON.stringify(part)}`);
    }
    return msg;
  }
  assert.fail(`expected a rejection mentioning ${parts.join(", ")}`);
}

// ---------------------------------------------------------------- RNG

Deno.test("Rng: xoshiro128** reference output for state [1,2,3,4]", () => {
  const r = Rng.fromState({ algorithm: "xoshiro128**", s: [1, 2, 3, 4], spare: null });
  const got = Array.from({ length: 10 }, () => r.nextU32());
  // from the reference C implementation (prng.di.unimi.it/xoshiro128starstar.c)
  assert.deepEqual(got, [
    11520,
    0,
    5927040,
    70819200,
    2031721883,
    1637235492,
    1287239034,
    3734860849,
    3729100597,
    4258142804,
  ]);
});

Deno.test("Rng: seeds are deterministic and distinct; state survives JSON exactly", () => {
  const a = new Rng(42), b = new Rng(42), c = new Rng(43), d = new Rng(42 + 2 ** 32);
  const xa = Array.from({ length: 8 }, () => a.nextU32());
  assert.deepEqual(Array.from({ length: 8 }, () => b.nextU32()), xa);
  assert.notDeepEqual(Array.from({ length: 8 }, () => c.nextU32()), xa);
  assert.notDeepEqual(Array.from({ length: 8 }, () => d.nextU32()), xa);

  const r = new Rng(7);
  for (let i = 0; i < 4; i++) r.normal();
  r.normal(); // odd count: a Box–Muller spare is cached now
  const saved = JSON.parse(JSON.stringify(r.getState())) as RngState;
  assert.notEqual(saved.spare, null);
  const seq = () => [r.normal(), r.uniform(), r.randInt(1000), r.normal(), r.nextU32(), r.randInt(2 ** 40)];
  const first = seq();
  r.setState(saved);
  assert.deepEqual(seq(), first);
  const r2 = Rng.fromState(saved);
  assert.deepEqual([
    r2.normal(),
    r2.uniform(),
    r2.randInt(1000),
    r2.normal(),
    r2.nextU32(),
    r2.randInt(2 ** 40),
  ], first);
  const cl = r.clone();
  assert.equal(cl.nextU32(), r.nextU32());
  assert.throws(() => r.setState({ algorithm: "xoshiro128**", s: [0, 0, 0, 0], spare: null }), /all-zero/);
  assert.throws(() => r.setState({ ...saved, s: [1, 2, 3, 2 ** 32] }), /bad state word/);
});

Deno.test("Rng: uniform, randInt and normal have the right distributions (loose bounds)", () => {
  const r = new Rng(1);
  const N = 200_000;
  let su = 0, minU = 1, maxU = 0;
  for (let i = 0; i < N; i++) {
    const u = r.uniform();
    su += u;
    minU = Math.min(minU, u);
    maxU = Math.max(maxU, u);
  }
  assert.ok(minU >= 0 && maxU < 1);
  assert.ok(Math.abs(su / N - 0.5) < 0.005);
  const counts = new Array(7).fill(0);
  for (let i = 0; i < 70_000; i++) counts[r.randInt(7)]++;
  for (const c of counts) assert.ok(Math.abs(c - 10_000) < 500, `randInt(7) count ${c}`);
  assert.equal(r.randInt(1), 0);
  assert.throws(() => r.randInt(0));
  let s = 0, ss = 0;
  for (let i = 0; i < N; i++) {
    const z = r.normal(2, 3);
    s += z;
    ss += z * z;
  }
  const m = s / N, v = ss / N - m * m;
  assert.ok(Math.abs(m - 2) < 0.05, `normal mean ${m}`);
  assert.ok(Math.abs(v - 9) < 0.2, `normal var ${v}`);
  const arr = Int32Array.from({ length: 100 }, (_, i) => i);
  r.shuffle(arr);
  assert.deepEqual(Array.from(arr).sort((a, b) => a - b), Array.from({ length: 100 }, (_, i) => i));
});

// ---------------------------------------------------------------- samplers

function drawAll(s: { next(): Int32Array }, k: number): number[][] {
  return Array.from({ length: k }, () => Array.from(s.next()));
}

Deno.test("IidSampler: deterministic, in range, exact resume from a JSON state", () => {
  const s1 = new IidSampler(1000, 64, 5), s2 = new IidSampler(1000, 64, new Rng(5));
  const a = drawAll(s1, 10);
  assert.deepEqual(drawAll(s2, 10), a);
  for (const batch of a) for (const i of batch) assert.ok(i >= 0 && i < 1000);
  const st = JSON.parse(JSON.stringify(s1.getState())) as SamplerState;
  assert.equal(st.step, 10);
  const more = drawAll(s1, 7);
  // restore into the same sampler and into a fresh one
  s1.setState(st);
  assert.deepEqual(drawAll(s1, 7), more);
  const fresh = new IidSampler(1000, 64, 999);
  fresh.setState(st);
  assert.equal(fresh.step, 10);
  assert.deepEqual(drawAll(fresh, 7), more);
  // out buffer
  const out = new Int32Array(64);
  assert.equal(fresh.next(out), out);
  assert.throws(() => fresh.next(new Int32Array(3)), /length 3/);
  assert.throws(() => new IidSampler(999, 64, 0).setState(st), /n=1000/);
  assert.throws(() => new EpochSampler(1000, 64, 0).setState(st), /kind iid/);
});

Deno.test("IidSampler: duplicates occur at the rate of sampling with replacement", () => {
  // small n: E[distinct] = n(1 − (1 − 1/n)^b)
  const n = 1000, b = 256, T = 300;
  const s = new IidSampler(n, b, 11);
  let dups = 0;
  for (let t = 0; t < T; t++) dups += b - new Set(s.next()).size;
  const expected = b - n * (1 - (1 - 1 / n) ** b); // ≈ 30.0
  assert.ok(Math.abs(dups / T - expected) < 2, `mean duplicates ${dups / T}, expected ${expected}`);
  // CIFAR scale: E[duplicates] ≈ b(b−1)/(2n) ≈ 0.65 per batch
  const big = new IidSampler(50_000, 256, 12);
  let bigDups = 0;
  const T2 = 2000;
  for (let t = 0; t < T2; t++) bigDups += 256 - new Set(big.next()).size;
  const e2 = 256 - 50_000 * (1 - (1 - 1 / 50_000) ** 256);
  assert.ok(bigDups > 0, "an i.i.d. sampler must produce duplicates");
  assert.ok(Math.abs(bigDups / T2 - e2) < 0.15, `mean duplicates ${bigDups / T2}, expected ${e2}`);
  // every index is reachable and roughly uniform
  const counts = new Int32Array(10);
  const s10 = new IidSampler(10, 100, 3);
  for (let t = 0; t < 200; t++) for (const i of s10.next()) counts[i]++;
  for (const c of counts) assert.ok(Math.abs(c - 2000) < 250, `count ${c}`);
});

Deno.test("EpochSampler: permutation per epoch, batches wrap, exact resume (also with a shared Rng)", () => {
  const n = 10, b = 4;
  const s = new EpochSampler(n, b, 3);
  const flat = drawAll(s, 5).flat(); // 20 indices = 2 epochs exactly
  assert.deepEqual(flat.slice(0, 10).sort((x, y) => x - y), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.deepEqual(flat.slice(10, 20).sort((x, y) => x - y), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.notDeepEqual(flat.slice(0, 10), flat.slice(10, 20));
  assert.equal(s.epoch, 1);

  // the generator is shared with another consumer between batches
  const rng = new Rng(77);
  const e = new EpochSampler(n, b, rng);
  drawAll(e, 3);
  rng.normal();
  const st = JSON.parse(JSON.stringify(e.getState())) as SamplerState;
  const after = [...drawAll(e, 6), [rng.nextU32()]];
  const e2 = new EpochSampler(n, b, 123);
  e2.setState(st);
  assert.deepEqual([...drawAll(e2, 6), [e2.rng.nextU32()]], after);
  // and a makeSampler-built one
  const m = makeSampler("epoch", n, b, 0);
  m.setState(st);
  assert.deepEqual(drawAll(m, 6), after.slice(0, 6));
  assert.ok(makeSampler("iid", 5, 2, 0) instanceof IidSampler);
});

// ---------------------------------------------------------------- corruption

Deno.test("corruptLabels: exactly floor(pN) distinct indices, wrong labels, deterministic", () => {
  const K = 10, N = 1003;
  const labels = Int32Array.from({ length: N }, (_, i) => i % K);
  for (const p of [0, 0.1, 0.29, 0.5, 1]) {
    const { labels: y, corruptedIndices: idx } = corruptLabels(labels, K, p, 9);
    const m = Math.floor(p * N + 1e-9);
    assert.equal(idx.length, m);
    assert.equal(new Set(idx).size, m);
    for (let j = 1; j < m; j++) assert.ok(idx[j] > idx[j - 1], "ascending");
    let changed = 0;
    for (let i = 0; i < N; i++) if (y[i] !== labels[i]) changed++;
    assert.equal(changed, m, `p=${p}: changed ${changed}`);
    for (const i of idx) {
      assert.notEqual(y[i], labels[i]);
      assert.ok(y[i] >= 0 && y[i] < K);
    }
    const again = corruptLabels(labels, K, p, 9);
    assert.deepEqual(again.labels, y);
    assert.deepEqual(again.corruptedIndices, idx);
  }
  assert.equal(corruptionCount(0.29, 100), 29);
  assert.equal(corruptionCount(0.555, 10), 5);
  // the input is not modified; another seed gives another choice
  assert.deepEqual(labels, Int32Array.from({ length: N }, (_, i) => i % K));
  assert.notDeepEqual(
    corruptLabels(labels, K, 0.5, 10).corruptedIndices,
    corruptLabels(labels, K, 0.5, 9).corruptedIndices,
  );
  // wrong labels are uniform over the K−1 other classes
  const big = new Int32Array(100_000); // all class 0
  const { labels: yb } = corruptLabels(big, K, 1, 1);
  const cnt = new Int32Array(K);
  for (const v of yb) cnt[v]++;
  assert.equal(cnt[0], 0);
  for (let k = 1; k < K; k++) assert.ok(Math.abs(cnt[k] - 100_000 / 9) < 500, `class ${k}: ${cnt[k]}`);
  // mode 'any' draws from all K (about 1/K keep their label)
  const any = corruptLabels(big, K, 1, 1, "any");
  let same = 0;
  for (const v of any.labels) if (v === 0) same++;
  assert.equal(any.corruptedIndices.length, 100_000);
  assert.ok(Math.abs(same - 10_000) < 600, `kept ${same}`);
  assert.throws(() => corruptLabels(labels, K, 1.5, 0), /p must be in/);
  assert.throws(() => corruptLabels([0, 10], K, 0.5, 0), /label 10 at index 1/);
});

// ---------------------------------------------------------------- dataset helpers and synthetic data

Deno.test("dataset helpers: subset, firstN, balancedSubset, channelMeanStd", () => {
  const ds = syntheticDataset({ n: 200, numClasses: 4, channels: 3, height: 5, width: 6, seed: 1 });
  validateDataset(ds);
  const sz = 3 * 5 * 6;
  const sub = subset(ds, [7, 3, 7]);
  assert.equal(sub.n, 3);
  assert.deepEqual(sub.images.subarray(0, sz), ds.images.subarray(7 * sz, 8 * sz));
  assert.deepEqual(sub.images.subarray(sz, 2 * sz), ds.images.subarray(3 * sz, 4 * sz));
  assert.deepEqual(Array.from(sub.labels), [ds.labels[7], ds.labels[3], ds.labels[7]]);
  assert.throws(() => subset(ds, [200]), /index 200/);
  const f = firstN(ds, 10);
  assert.equal(f.n, 10);
  assert.equal(f.images.length, 10 * sz);
  assert.equal(firstN(ds, 1e9).n, 200);
  const bal = balancedSubset(ds, 20, 3);
  assert.equal(bal.n, 80);
  assert.deepEqual(Array.from(classCounts(bal)), [20, 20, 20, 20]);
  assert.deepEqual(balancedSubset(ds, 20, 3).images, bal.images);
  assert.throws(() => balancedSubset(ds, 51, 3), /class \d has 50 images, need 51/);

  const { mean, std } = channelMeanStd(ds);
  for (let c = 0; c < 3; c++) {
    let s = 0, ss = 0, cnt = 0;
    for (let i = 0; i < ds.n; i++) {
      for (let p = 0; p < 30; p++) {
        const v = ds.images[i * sz + c * 30 + p] / 255;
        s += v;
        ss += v * v;
        cnt++;
      }
    }
    const m = s / cnt;
    assert.ok(Math.abs(mean[c] - m) < 1e-12);
    assert.ok(Math.abs(std[c] - Math.sqrt(ss / cnt - m * m)) < 1e-9);
  }
});

Deno.test("syntheticDataset: deterministic, balanced and learnable by nearest class mean", () => {
  const opts = { n: 1000, numClasses: 10, channels: 3, height: 16, width: 16, seed: 4 };
  const a = syntheticDataset(opts), b = syntheticDataset(opts);
  assert.deepEqual(a.images, b.images);
  assert.deepEqual(a.labels, b.labels);
  assert.notDeepEqual(syntheticDataset({ ...opts, seed: 5 }).images, a.images);
  assert.deepEqual(Array.from(classCounts(a)), new Array(10).fill(100));
  // nearest class mean (train on first 800, test on last 200) must be far above chance
  const sz = 3 * 16 * 16, K = 10;
  const means = Array.from({ length: K }, () => new Float64Array(sz));
  const cnt = new Int32Array(K);
  for (let i = 0; i < 800; i++) {
    const y = a.labels[i];
    cnt[y]++;
    for (let p = 0; p < sz; p++) means[y][p] += a.images[i * sz + p];
  }
  for (let k = 0; k < K; k++) for (let p = 0; p < sz; p++) means[k][p] /= cnt[k];
  let correct = 0;
  for (let i = 800; i < 1000; i++) {
    let best = -1, bestD = Infinity;
    for (let k = 0; k < K; k++) {
      let d = 0;
      for (let p = 0; p < sz; p++) d += (a.images[i * sz + p] - means[k][p]) ** 2;
      if (d < bestD) [bestD, best] = [d, k];
    }
    if (best === a.labels[i]) correct++;
  }
  assert.ok(correct / 200 > 0.5, `nearest-mean accuracy ${correct / 200}`);
});

// ---------------------------------------------------------------- CIFAR-10 / CIFAR-100 files

Deno.test("CIFAR-10: generated files round-trip", async () => {
  await withTempDir(async (dir) => {
    const per = 7;
    const trainImgs: Uint8Array[] = [], trainLabs: number[] = [];
    for (let f = 1; f <= 5; f++) {
      const imgs = randomBytes(per * 3072, f);
      const labs = Array.from({ length: per }, (_, i) => (i + f) % 10);
      trainImgs.push(imgs);
      trainLabs.push(...labs);
      await writeCifar10Batch(`${dir}/data_batch_${f}.bin`, imgs, labs);
    }
    const testImgs = randomBytes(3 * 3072, 99);
    await writeCifar10Batch(`${dir}/test_batch.bin`, testImgs, [9, 0, 5]);
    const train = await loadCifar10(dir, "train");
    validateDataset(train);
    assert.equal(train.n, 35);
    assert.equal(train.channels, 3);
    assert.equal(train.height, 32);
    assert.equal(train.numClasses, 10);
    assert.equal(train.classNames?.[0], "airplane");
    assert.deepEqual(Array.from(train.labels), trainLabs);
    const all = new Uint8Array(35 * 3072);
    trainImgs.forEach((im, f) => all.set(im, f * per * 3072));
    assert.deepEqual(train.images, all);
    const test = await loadCifar10(dir + "/", "test");
    assert.deepEqual(Array.from(test.labels), [9, 0, 5]);
    assert.deepEqual(test.images, testImgs);
    // in-memory parser agrees
    const parsed = parseCifar10Batch(encodeCifar10Batch(testImgs, [9, 0, 5]));
    assert.deepEqual(parsed.images, testImgs);
  });
});

Deno.test("CIFAR-10: missing, truncated and mislabelled files give precise errors", async () => {
  await withTempDir(async (dir) => {
    for (let f = 1; f <= 5; f++) {
      await writeCifar10Batch(`${dir}/data_batch_${f}.bin`, randomBytes(4 * 3072, f), [0, 1, 2, 3]);
    }
    await rejectsWith(loadCifar10(dir, "test"), `${dir}/test_batch.bin`, "not found", "CIFAR-10");
    // truncate batch 3 inside its 4th record (record 3)
    const p3 = `${dir}/data_batch_3.bin`;
    const full = await Deno.readFile(p3);
    await Deno.writeFile(p3, full.subarray(0, 3 * CIFAR10_RECORD_BYTES + 100));
    await rejectsWith(
      loadCifar10(dir, "train"),
      "data_batch_3.bin",
      "truncated record 3",
      `at byte ${3 * CIFAR10_RECORD_BYTES}`,
      `file has ${3 * CIFAR10_RECORD_BYTES + 100} bytes`,
      "record size 3073",
    );
    await Deno.writeFile(p3, full);
    // a bad label in record 2 of batch 4
    const p4 = `${dir}/data_batch_4.bin`;
    const b4 = await Deno.readFile(p4);
    b4[2 * CIFAR10_RECORD_BYTES] = 10;
    await Deno.writeFile(p4, b4);
    await rejectsWith(
      loadCifar10(dir, "train"),
      "data_batch_4.bin",
      "record 2",
      `byte ${2 * CIFAR10_RECORD_BYTES}`,
      "label 10",
    );
    await Deno.writeFile(`${dir}/test_batch.bin`, new Uint8Array(0));
    await rejectsWith(loadCifar10(dir, "test"), "test_batch.bin", "empty");
  });
});

Deno.test("CIFAR-100: generated file round-trips with fine and coarse labels; errors", async () => {
  await withTempDir(async (dir) => {
    const n = 9;
    const imgs = randomBytes(n * 3072, 5);
    const fine = Array.from({ length: n }, (_, i) => 11 * i);
    const coarse = Array.from({ length: n }, (_, i) => 2 * i + 1);
    await writeCifar100File(`${dir}/train.bin`, imgs, coarse, fine);
    const dsF = await loadCifar100(dir, "train");
    assert.equal(dsF.numClasses, 100);
    assert.deepEqual(Array.from(dsF.labels), fine);
    assert.deepEqual(dsF.images, imgs);
    const dsC = await loadCifar100(dir, "train", { labelKind: "coarse" });
    assert.equal(dsC.numClasses, 20);
    assert.deepEqual(Array.from(dsC.labels), coarse);
    assert.deepEqual(dsC.images, imgs);
    validateDataset(dsF);
    validateDataset(dsC);
    await rejectsWith(loadCifar100(dir, "test"), `${dir}/test.bin`, "not found", "CIFAR-100");

    const bytes = await Deno.readFile(`${dir}/train.bin`);
    const bad = bytes.slice();
    bad[5 * CIFAR100_RECORD_BYTES + 1] = 100; // fine label of record 5
    await Deno.writeFile(`${dir}/test.bin`, bad);
    await rejectsWith(
      loadCifar100(dir, "test", { labelKind: "coarse" }),
      "test.bin",
      "record 5",
      `byte ${5 * CIFAR100_RECORD_BYTES + 1}`,
      "fine label 100",
    );
    bad[5 * CIFAR100_RECORD_BYTES + 1] = 0;
    bad[6 * CIFAR100_RECORD_BYTES] = 20; // coarse label of record 6
    await Deno.writeFile(`${dir}/test.bin`, bad);
    await rejectsWith(
      loadCifar100(dir, "test"),
      "record 6",
      `byte ${6 * CIFAR100_RECORD_BYTES}`,
      "coarse label 20",
    );
    await Deno.writeFile(`${dir}/test.bin`, bytes.subarray(0, bytes.length - 1));
    await rejectsWith(
      loadCifar100(dir, "test"),
      "test.bin",
      `truncated record ${n - 1}`,
      `at byte ${(n - 1) * CIFAR100_RECORD_BYTES}`,
      "record size 3074",
    );
  });
});

// ---------------------------------------------------------------- idx

Deno.test("idx: plain and gzipped files round-trip", async () => {
  await withTempDir(async (dir) => {
    const n = 13;
    const imgs = randomBytes(n * 28 * 28, 8);
    const labs = Uint8Array.from({ length: n }, (_, i) => (i * 3) % 10);
    for (const gzip of [false, true]) {
      const ip = `${dir}/img${gzip ? ".gz" : ""}`, lp = `${dir}/lab${gzip ? ".gz" : ""}`;
      await writeIdx(ip, imgs, [n, 28, 28], { gzip });
      await writeIdx(lp, labs, [n], { gzip });
      const raw = await Deno.readFile(ip);
      assert.equal(raw[0] === 0x1f && raw[1] === 0x8b, gzip);
      const ds = await loadIdxDataset(ip, lp, "toy");
      validateDataset(ds);
      assert.equal(ds.name, "toy");
      assert.equal(ds.n, n);
      assert.equal(ds.channels, 1);
      assert.equal(ds.height, 28);
      assert.equal(ds.width, 28);
      assert.equal(ds.numClasses, 10);
      assert.deepEqual(ds.images, imgs);
      assert.deepEqual(Array.from(ds.labels), Array.from(labs));
      const arr = await readIdx(ip, 3);
      assert.deepEqual(arr.dims, [n, 28, 28]);
    }
    // header layout
    const enc = encodeIdx(new Uint8Array([1, 2]), [2]);
    assert.deepEqual(Array.from(enc), [0, 0, 8, 1, 0, 0, 0, 2, 1, 2]);
  });
});

Deno.test("idx: wrong magic, truncation, bad labels, count mismatch and bad gzip give precise errors", async () => {
  await withTempDir(async (dir) => {
    const n = 5;
    const imgs = randomBytes(n * 28 * 28, 2);
    const labs = new Uint8Array([0, 1, 2, 3, 4]);
    const ip = `${dir}/i`, lp = `${dir}/l`, lpz = `${dir}/l.gz`;
    await writeIdx(ip, imgs, [n, 28, 28]);
    await writeIdx(lp, labs, [n]);
    // swapped files: wrong magic
    await rejectsWith(
      loadIdxDataset(lp, ip, "x"),
      lp,
      "bad magic 0x00000801 at byte 0",
      "expected 0x00000803",
    );
    await rejectsWith(loadIdxDataset(ip, ip, "x"), "bad magic 0x00000803 at byte 0", "expected 0x00000801");
    // truncated images: cut inside image 3
    const full = await Deno.readFile(ip);
    await Deno.writeFile(`${dir}/it`, full.subarray(0, 16 + 3 * 784 + 10));
    await rejectsWith(
      loadIdxDataset(`${dir}/it`, lp, "x"),
      `${dir}/it`,
      "truncated",
      "item 3 of 5",
      `byte ${16 + 3 * 784}`,
      `ends at byte ${16 + 3 * 784 + 10}`,
    );
    await Deno.writeFile(`${dir}/ih`, full.subarray(0, 10));
    await rejectsWith(loadIdxDataset(`${dir}/ih`, lp, "x"), "header truncated at byte 10");
    // trailing garbage
    await Deno.writeFile(`${dir}/ix`, new Uint8Array([...full, 1, 2]));
    await rejectsWith(
      loadIdxDataset(`${dir}/ix`, lp, "x"),
      "2 unexpected trailing bytes",
      `byte ${16 + 5 * 784}`,
    );
    // bad label at index 3, gzipped (offset is in the decompressed stream)
    await writeIdx(lpz, new Uint8Array([0, 1, 2, 12, 4]), [n], { gzip: true });
    await rejectsWith(
      loadIdxDataset(ip, lpz, "x"),
      lpz,
      "label 3 at byte 11 (decompressed)",
      "is 12",
      "0..9",
    );
    // count mismatch
    await writeIdx(lp, new Uint8Array([0, 1, 2, 3]), [4]);
    await rejectsWith(loadIdxDataset(ip, lp, "x"), "4 labels", "5 images");
    // corrupt gzip
    await Deno.writeFile(lpz, new Uint8Array([0x1f, 0x8b, 8, 0, 1, 2, 3]));
    await rejectsWith(loadIdxDataset(ip, lpz, "x"), lpz, "gzip decompression failed");
    // missing
    await rejectsWith(loadIdxDataset(`${dir}/nope`, lp, "x"), `${dir}/nope`, "not found", "idx3-ubyte");
  });
  assert.equal(findFashionMnist("/nonexistent-dir"), null);
  await rejectsWith(
    loadFashionMnist("train", "/nonexistent-dir"),
    "Fashion-MNIST not found",
    "dataset-fashion-mnist",
  );
});

// ---------------------------------------------------------------- bytes in, no file system

Deno.test("decoders take bytes (eager or lazy), gzip through web streams, errors name the file", async () => {
  const imgs = randomBytes(4 * 3072, 3);
  const b1 = encodeCifar10Batch(imgs.subarray(0, 2 * 3072), [3, 4]);
  const b2 = encodeCifar10Batch(imgs.subarray(2 * 3072), [5, 6]);
  let reads = 0;
  const lazy = { file: "b2.bin", size: b2.length, read: () => (reads++, Promise.resolve(b2)) };
  const ds = await cifar10Dataset("train", [{ file: "b1.bin", bytes: b1 }, lazy]);
  validateDataset(ds);
  assert.equal(reads, 1);
  assert.equal(ds.name, "cifar10-train");
  assert.deepEqual(Array.from(ds.labels), [3, 4, 5, 6]);
  assert.deepEqual(ds.images, imgs);
  assert.equal(ds.classNames?.[3], "cat");
  const named = await cifar10Dataset("test", [{ file: "t.bin", bytes: b1 }], {
    classNames: parseClassNames("a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n", 10),
  });
  assert.deepEqual(named.classNames?.slice(0, 2), ["a", "b"]);
  assert.equal(parseClassNames("a\r\nb\n", 10), undefined);
  await rejectsWith(
    cifar10Dataset("test", [{ file: "t.bin", bytes: b1 }], { classNames: ["x"] }),
    "1 class names",
  );
  await rejectsWith(
    cifar10Dataset("train", [{ file: "cut.bin", bytes: b1.subarray(0, 3073 + 5) }]),
    "cut.bin",
    "truncated record 1",
    "at byte 3073",
  );
  await rejectsWith(
    cifar10Dataset("train", [{ file: "grew.bin", size: 3073, read: () => Promise.resolve(b1) }]),
    "grew.bin",
    "file grew while loading",
  );
  const c100 = await cifar100Dataset("test", {
    file: "test.bin",
    bytes: encodeCifar100File(imgs, [1, 2, 3, 4], [9, 8, 7, 6]),
  }, {
    labelKind: "coarse",
  });
  assert.deepEqual(Array.from(c100.labels), [1, 2, 3, 4]);
  assert.equal(c100.name, "cifar100-coarse-test");

  const pix = randomBytes(3 * 28 * 28, 4);
  const imgGz = await gzip(encodeIdx(pix, [3, 28, 28]));
  assert.deepEqual(Array.from(imgGz.subarray(0, 2)), [0x1f, 0x8b]);
  assert.deepEqual(await gunzip(imgGz), encodeIdx(pix, [3, 28, 28]));
  const fm = await fashionMnistDataset("test", { file: "img.gz", bytes: imgGz }, {
    file: "lab",
    bytes: encodeIdx(new Uint8Array([9, 0, 1]), [3]),
  });
  validateDataset(fm);
  assert.equal(fm.name, "fashion-mnist-test");
  assert.deepEqual(fm.images, pix);
  assert.equal(fm.classNames?.[fm.labels[0]], "Ankle boot");
  await rejectsWith(
    idxDataset({ file: "img.gz", bytes: imgGz.subarray(0, imgGz.length - 4) }, {
      file: "lab",
      bytes: new Uint8Array(),
    }, "x"),
    "img.gz",
    "gzip decompression failed",
  );
});

// ---------------------------------------------------------------- real data (skipped when absent)

Deno.test({
  name: "real CIFAR-10: sizes, class balance, channel mean/std",
  ignore: !dirExists(CIFAR10_DIR),
  fn: async () => {
    const [train, test] = await Promise.all([
      loadCifar10(CIFAR10_DIR, "train"),
      loadCifar10(CIFAR10_DIR, "test"),
    ]);
    assert.equal(train.n, 50_000);
    assert.equal(test.n, 10_000);
    validateDataset(train);
    validateDataset(test);
    assert.deepEqual(Array.from(classCounts(train)), new Array(10).fill(5000));
    assert.deepEqual(Array.from(classCounts(test)), new Array(10).fill(1000));
    assert.deepEqual(train.classNames?.slice(0, 2), ["airplane", "automobile"]);
    const { mean, std } = channelMeanStd(train);
    const em = [0.4914, 0.4822, 0.4465], es = [0.2470, 0.2435, 0.2616];
    for (let c = 0; c < 3; c++) {
      assert.ok(Math.abs(mean[c] - em[c]) < 2e-4, `mean[${c}] = ${mean[c]}`);
      assert.ok(Math.abs(std[c] - es[c]) < 2e-4, `std[${c}] = ${std[c]}`);
    }
  },
});

const fmnist = findFashionMnist();

Deno.test({
  name: "real Fashion-MNIST (Debian dataset-fashion-mnist): sizes and balance",
  ignore: fmnist === null,
  fn: async () => {
    const train = await loadFashionMnist("train");
    const test = await loadFashionMnist("test");
    assert.equal(train.n, 60_000);
    assert.equal(test.n, 10_000);
    assert.equal(train.height, 28);
    assert.equal(train.channels, 1);
    assert.deepEqual(Array.from(classCounts(train)), new Array(10).fill(6000));
    assert.deepEqual(Array.from(classCounts(test)), new Array(10).fill(1000));
    assert.equal(train.classNames?.[9], "Ankle boot");
  },
});
