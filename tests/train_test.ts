/**
 * Section 5 training (`deno task train`): argument parsing, the GPU batch assembly against a CPU
 * reference, a narrow ResNet-18 whose loss falls, bit-identical resume, NaN handling with the last
 * good checkpoint intact, checkpoint contents under PyTorch names, and an SC run whose class means
 * move toward the simplex geometry.
 *
 * Sizes: ResNet-18 at width 1/16 (stage widths 4, 8, 16, 32), 16×16 synthetic images, batch 16.
 */
import nodeAssert from "node:assert/strict";
import { join } from "node:path";
import { gpuTest, setup } from "./util.ts";
import { tensor } from "../engine/tensor.ts";
import { syntheticDataset } from "../data/synthetic.ts";
import { channelMeanStd } from "../data/dataset.ts";
import { Rng } from "../data/sampler.ts";
import { readCsv } from "../train/csv.ts";
import { loadSafetensors } from "../train/safetensors.ts";
import { classMeans, gammaSimplex, pairwiseGamma } from "../theory/gamma.ts";
import {
  checkResumeConfig,
  CliError,
  CliHelp,
  ConfigError,
  configHash,
  defaultTrainConfig,
  parseTrainArgs,
  type TrainConfig,
} from "../experiments/section5/config.ts";
import { drawAugmentParams, GpuDataset } from "../train/data_gpu.ts";
import { loadCheckpoint, readCheckpoint } from "../experiments/section5/checkpoint.ts";
import { errorRate, extractFeatures } from "../train/evaluate.ts";
import { NonFiniteLossError, prepareData, trainRun } from "../experiments/section5/trainer.ts";
import { buildNetwork } from "../experiments/section5/checkpoint.ts";
import { main } from "../experiments/train.ts";

function assert(cond: unknown, msg?: string): asserts cond {
  nodeAssert.ok(cond, msg ?? "assertion failed");
}
function assertEquals<T>(actual: T, expected: T, msg?: string): void {
  nodeAssert.deepStrictEqual(actual, expected, msg ?? "values differ");
}
function assertAlmostEquals(actual: number, expected: number, tol: number, msg?: string): void {
  nodeAssert.ok(
    Math.abs(actual - expected) <= tol,
    `${msg ?? ""} ${actual} vs ${expected} (tolerance ${tol})`,
  );
}
function assertMatch(text: string, re: RegExp): void {
  nodeAssert.match(text, re);
}
// deno-lint-ignore no-explicit-any
type ErrorClass = new (...args: any[]) => Error;
function assertThrows(fn: () => unknown, cls: ErrorClass, re?: RegExp): void {
  nodeAssert.throws(fn, (e: unknown) => e instanceof cls && (!re || re.test((e as Error).message)));
}
async function assertRejects(fn: () => Promise<unknown>, cls: ErrorClass, re?: RegExp): Promise<Error> {
  let caught: unknown = null;
  try {
    await fn();
  } catch (e) {
    caught = e;
  }
  nodeAssert.ok(caught instanceof cls, `expected ${cls.name}, got ${caught}`);
  if (re) nodeAssert.match((caught as Error).message, re);
  return caught as Error;
}

/** A tiny config: width 1/16, 16×16 synthetic images of 4 classes, batch 16. */
function tiny(out: string, overrides: Partial<TrainConfig> = {}): TrainConfig {
  return {
    ...defaultTrainConfig,
    dataset: "synthetic",
    syntheticN: 64,
    syntheticTestN: 32,
    syntheticClasses: 4,
    syntheticSize: 16,
    width: 1 / 16,
    batch: 16,
    iterations: 12,
    lr: 0.05,
    logEvery: 1,
    checkpointEvery: 0,
    evalBatch: 32,
    probeIterations: 20,
    quiet: true,
    out,
    ...overrides,
  };
}

const LOSS_COLUMNS = ["step", "lr", "loss", "loss_per_sample", "loss_avg", "batch_error"];

async function lossRows(path: string): Promise<string[]> {
  const rows = await readCsv(path);
  return rows.filter((r) => r.loss !== "").map((r) => LOSS_COLUMNS.map((c) => r[c]).join(","));
}

Deno.test("parseTrainArgs: defaults follow the paper; flags, errors, resume checks", () => {
  const d = parseTrainArgs([]);
  assertEquals(d.dataset, "synthetic");
  assertEquals(d.loss, "ce");
  assertEquals(d.batch, 256);
  assertEquals(d.iterations, 100000);
  assertEquals(d.lr, 0.1);
  assertEquals(d.momentum, 0.9);
  assertEquals(d.weightDecay, 1e-4);
  assertEquals(d.lrPower, 5);
  assertEquals(d.tau, 0.1);
  assertEquals(d.probeIterations, 5000);
  assertEquals(d.probeWeightDecay, 1e-3);
  assertEquals(d.sampler, "iid");
  assertEquals(d.augment, true);
  assertMatch(d.out, /^runs\/train-ce-synthetic-\d{8}-\d{6}$/);
  const c = parseTrainArgs([
    "--dataset",
    "cifar10",
    "--loss",
    "sc",
    "--model",
    "preact-resnet18",
    "--width",
    "0.25",
    "--no-augment",
    "--corruption",
    "0.2",
    "--corruption-mode",
    "any",
    "--train-subset",
    "1000",
    "--out",
    "/tmp/x",
    "--seed",
    "3",
  ]);
  assertEquals([c.dataset, c.loss, c.model, c.width, c.augment], [
    "cifar10",
    "sc",
    "preact-resnet18",
    0.25,
    false,
  ]);
  assertEquals([c.corruption, c.corruptionMode, c.trainSubset, c.out, c.seed], [
    0.2,
    "any",
    1000,
    "/tmp/x",
    3,
  ]);
  assertThrows(() => parseTrainArgs(["--loss", "mse"]), CliError, /--loss/);
  assertThrows(() => parseTrainArgs(["--batch", "0"]), CliError, /--batch/);
  assertThrows(() => parseTrainArgs(["--resume"]), CliError, /--out/);
  assertThrows(() => parseTrainArgs(["--synthetic-size", "12"]), CliError, /multiple of 8/);
  assertThrows(() => parseTrainArgs(["--help"]), CliHelp);
  // Resume: only the iteration count (and output settings) may change.
  const a = tiny("/tmp/a");
  checkResumeConfig(a, { ...a, iterations: 20, resume: true }, 12);
  assertEquals(configHash(a), configHash({ ...a, iterations: 99, quiet: false }));
  assertThrows(() => checkResumeConfig(a, { ...a, lr: 0.1 }, 5), ConfigError, /lr: saved 0.05, now 0.1/);
  assertThrows(() => checkResumeConfig(a, { ...a, iterations: 4 }, 5), ConfigError, /below the checkpoint/);
});

/** CPU reference of the batch assembly: crop (zero padding) at offset, flip, normalise. */
function assembleRef(
  images: Uint8Array,
  shape: [number, number, number, number],
  idx: Int32Array,
  params: Int32Array | null,
  mean: number[],
  std: number[],
): Float64Array {
  const [, C, H, W] = shape;
  const out = new Float64Array(idx.length * C * H * W);
  let o = 0;
  for (let n = 0; n < idx.length; n++) {
    const [dx, dy, flip] = params ? [params[3 * n], params[3 * n + 1], params[3 * n + 2]] : [0, 0, 0];
    for (let c = 0; c < C; c++) {
      for (let y = 0; y < H; y++) {
        for (let x = 0; x < W; x++) {
          const xc = flip ? W - 1 - x : x;
          const sx = xc + dx, sy = y + dy;
          const v = sx >= 0 && sx < W && sy >= 0 && sy < H
            ? images[((idx[n] * C + c) * H + sy) * W + sx] / 255
            : 0;
          out[o++] = (v - mean[c]) / std[c];
        }
      }
    }
  }
  return out;
}

Deno.test({
  name: "GpuDataset: assembled batches (plain and augmented) and gathered labels match a CPU reference",
  ...gpuTest,
  async fn() {
    await setup();
    // 12×20 images: width not a multiple of the tiles; batch of 7 with a duplicate index.
    const ds = syntheticDataset({ n: 23, numClasses: 5, height: 12, width: 20, seed: 4 });
    const stats = channelMeanStd(ds);
    const labels = Int32Array.from(ds.labels, (y) => (y + 1) % 5);
    const data = GpuDataset.upload(ds, { labels });
    const idx = Int32Array.of(0, 22, 5, 5, 13, 7, 1);
    const params = drawAugmentParams(new Rng(9), idx.length);
    const it = tensor(idx, [idx.length], { dtype: "i32" });
    const pt = tensor(params, [idx.length, 3], { dtype: "i32" });
    const shape: [number, number, number, number] = [ds.n, ds.channels, ds.height, ds.width];
    for (const p of [null, pt]) {
      const x = data.assemble(it, p);
      assertEquals([...x.shape], [7, 3, 12, 20]);
      const got = await x.toArray();
      const want = assembleRef(ds.images, shape, idx, p ? params : null, stats.mean, stats.std);
      let worst = 0;
      for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]));
      assert(
        worst < 1e-5,
        `assemble (${p ? "augmented" : "plain"}): max error ${worst} (tolerance 1e-5 absolute)`,
      );
      x.dispose();
    }
    // The params draw dx, dy in [−4, 4] and a flip bit.
    for (let i = 0; i < params.length; i += 3) {
      assert(
        Math.abs(params[i]) <= 4 && Math.abs(params[i + 1]) <= 4 &&
          (params[i + 2] === 0 || params[i + 2] === 1),
      );
    }
    const y = await data.gatherLabels(it).toArray();
    assertEquals([...y], Array.from(idx, (i) => labels[i]));
    assertEquals(errorRate([1, 2, 3, 4], [1, 0, 3, 0]), 0.5);
    it.dispose();
    pt.dispose();
    data.dispose();
  },
});

Deno.test({
  name: "trainRun (CE): a narrow ResNet-18 learns synthetic data; outputs, checkpoint names, loadCheckpoint",
  ...gpuTest,
  async fn() {
    await setup();
    const out = await Deno.makeTempDir({ prefix: "train_ce_" });
    const config = tiny(out, { iterations: 40, lr: 0.05, logEvery: 1, lrPower: 1 });
    const result = await trainRun(config);
    assertEquals(result.status, "completed");
    assertEquals(result.step, 40);
    const rows = (await readCsv(result.paths.metrics, { numbers: true })).filter((r) => r.loss !== "");
    assertEquals(rows.length, 40);
    const mean = (rs: typeof rows) => rs.reduce((s, r) => s + (r.loss as number), 0) / rs.length;
    const first = mean(rows.slice(0, 8)), last = mean(rows.slice(-8));
    assert(last < 0.75 * first, `loss should fall: first 8 steps ${first}, last 8 steps ${last}`);
    // The learning rate follows lr·(1 − t/T)^p (t = step − 1, 0-based).
    assertAlmostEquals(rows[9].lr as number, Math.fround(0.05 * (1 - 9 / 40)), 1e-9);
    const m = result.metrics!;
    assert(m.trainError >= 0 && m.trainError <= 1 && m.testError >= 0 && m.testError <= 1);
    assert(m.testError < 0.6, `test error ${m.testError} should beat chance (0.75) after training`);
    for (
      const p of [result.paths.config, result.paths.summary, result.paths.figureSvg!, result.paths.figurePng!]
    ) {
      assert((await Deno.stat(p)).size > 0, p);
    }
    const summary = JSON.parse(await Deno.readTextFile(result.paths.summary));
    assertEquals(summary.status, "completed");
    assertEquals(summary.metrics.testError, m.testError);

    // The checkpoint: PyTorch names, BN buffers, momentum, classifier; metadata.
    const file = await loadSafetensors(result.paths.checkpoint);
    const t = file.tensors;
    for (
      const name of [
        "conv1.weight",
        "bn1.weight",
        "bn1.running_var",
        "layer1.0.bn1.running_mean",
        "layer2.0.shortcut.0.weight",
        "layer4.1.conv2.weight",
        "classifier.weight",
        "optimizer.momentum.conv1.weight",
        "optimizer.momentum.classifier.weight",
      ]
    ) {
      assert(name in t, `checkpoint lacks ${name}`);
    }
    assertEquals(t["conv1.weight"].shape, [4, 3, 3, 3]);
    assertEquals(t["classifier.weight"].shape, [4, 32]);
    assertEquals(t["layer1.0.bn1.num_batches_tracked"].dtype, "I64");
    assertEquals(file.metadata.step, "40");
    assertEquals(JSON.parse(file.metadata.config).width, 1 / 16);
    const loaded = await loadCheckpoint(result.paths.checkpoint);
    assertEquals(loaded.step, 40);
    assertEquals(loaded.meta.final, true);
    const sd = await loaded.model.stateDict();
    assertEquals(sd["layer1.0.bn1.running_mean"].data, t["layer1.0.bn1.running_mean"].data);
    assertEquals(sd["conv1.weight"].data, t["conv1.weight"].data);
    // Features of the loaded encoder reproduce the run's test error with the loaded classifier.
    const data = await prepareData(config);
    const test = GpuDataset.upload(data.test, { stats: data.stats });
    const { evaluateError } = await import("../train/evaluate.ts");
    const te = await evaluateError(loaded.model, loaded.classifier!, test, { batchSize: 32 });
    assertEquals(te.error, m.testError);
    test.dispose();
    loaded.model.dispose();
    loaded.classifier?.dispose();
    // A second run into the same folder is refused without --resume.
    await assertRejects(() => trainRun(config), ConfigError, /--resume/);
    await Deno.remove(out, { recursive: true });
  },
});

Deno.test({
  name: "trainRun: an interrupted and resumed run reproduces the uninterrupted loss trajectory bit for bit",
  ...gpuTest,
  async fn() {
    const g = await setup();
    await g.sync();
    const liveBefore = g.memory().liveBuffers;
    for (const loss of ["ce", "sc"] as const) {
      const dirA = await Deno.makeTempDir({ prefix: `train_resume_a_${loss}_` });
      const dirB = await Deno.makeTempDir({ prefix: `train_resume_b_${loss}_` });
      const over: Partial<TrainConfig> = { loss, iterations: 8, checkpointEvery: 3, probeIterations: 5 };
      const a = await trainRun(tiny(dirA, over));
      assertEquals(a.status, "completed");
      // Stop after 5 steps (a step that is not a checkpoint multiple), then resume to 8.
      const b1 = await trainRun(tiny(dirB, over), { shouldStop: (s) => s === 5 });
      assertEquals(b1.status, "stopped"); // stopped by the hook (a signal gives "interrupted")
      assertEquals(b1.step, 5);
      const meta = (await readCheckpoint(b1.paths.checkpoint)).meta;
      assertEquals(meta.step, 5);
      assertEquals(meta.state.csvRows, 5);
      const b2 = await trainRun(tiny(dirB, { ...over, resume: true }));
      assertEquals(b2.status, "completed");
      assertEquals(b2.step, 8);
      const ra = await lossRows(a.paths.metrics), rb = await lossRows(b2.paths.metrics);
      assertEquals(ra.length, 8);
      assertEquals(rb, ra, `${loss}: resumed trajectory differs`);
      assertEquals(b2.metrics, a.metrics, `${loss}: final metrics differ`);
      // Final weights are identical too.
      const fa = await loadSafetensors(a.paths.checkpoint), fb = await loadSafetensors(b2.paths.checkpoint);
      assertEquals(fb.tensors["layer4.1.conv2.weight"].data, fa.tensors["layer4.1.conv2.weight"].data);
      assertEquals(
        fb.tensors["optimizer.momentum.conv1.weight"].data,
        fa.tensors["optimizer.momentum.conv1.weight"].data,
      );
      await Deno.remove(dirA, { recursive: true });
      await Deno.remove(dirB, { recursive: true });
    }
    await g.sync();
    assertEquals(g.memory().liveBuffers, liveBefore, "trainRun frees every GPU buffer it allocated");
  },
});

Deno.test({
  name: "trainRun: an absurd learning rate stops with the step number and keeps the last good checkpoint",
  ...gpuTest,
  async fn() {
    await setup();
    const out = await Deno.makeTempDir({ prefix: "train_nan_" });
    const config = tiny(out, { lr: 1e30, lrPower: 0, iterations: 10, checkpointEvery: 1, logEvery: 5 });
    const err = await assertRejects(() => trainRun(config), NonFiniteLossError) as NonFiniteLossError;
    assert(err.step >= 1 && err.step <= 10, `step ${err.step}`);
    assertMatch(err.message, new RegExp(`diverged at step ${err.step}: .*(non-finite|not finite)`));
    assert(err.checkpointStep < err.step, "the checkpoint predates the bad step");
    if (err.checkpoint) {
      const raw = await readCheckpoint(err.checkpoint);
      assertEquals(raw.meta.step, err.checkpointStep);
      for (const [name, t] of Object.entries(raw.tensors)) {
        if (t.dtype !== "F32") continue;
        for (const v of t.data as Float32Array) assert(Number.isFinite(v), `${name} holds ${v}`);
      }
    }
    const summary = JSON.parse(await Deno.readTextFile(join(out, "summary.json")));
    assertEquals(summary.status, "diverged");
    assertEquals(summary.step, err.step);
    // The CLI reports it with exit code 3.
    const out2 = await Deno.makeTempDir({ prefix: "train_nan_cli_" });
    const code = await main([
      "--width=0.0625",
      "--synthetic-size=16",
      "--synthetic-n=32",
      "--synthetic-test-n=16",
      "--synthetic-classes=4",
      "--batch=16",
      "--iterations=6",
      "--lr=1e30",
      "--lr-power=0",
      "--log-every=1",
      "--quiet",
      `--out=${out2}`,
    ]);
    assertEquals(code, 3);
    await Deno.remove(out, { recursive: true });
    await Deno.remove(out2, { recursive: true });
  },
});

/** Mean γ over pairs of class means of the training features (eval mode, no augmentation). */
async function meanClassGamma(
  model: Parameters<typeof extractFeatures>[0],
  data: GpuDataset,
  K: number,
): Promise<number> {
  const f = await extractFeatures(model, data, { batchSize: 32 });
  const mu = classMeans({ data: f.features, dim: f.dim }, f.labels, K);
  const g = pairwiseGamma(mu);
  return g.reduce((a, b) => a + b, 0) / g.length;
}

Deno.test({
  name: "trainRun (SC): class means move toward the simplex geometry; the probe is trained and saved",
  ...gpuTest,
  async fn() {
    await setup();
    const out = await Deno.makeTempDir({ prefix: "train_sc_" });
    const K = 4;
    const config = tiny(out, {
      loss: "sc",
      model: "preact-resnet18",
      iterations: 30,
      lr: 0.05,
      logEvery: 5,
      augment: false,
      probeIterations: 40,
    });
    // γ at initialisation, from the same seed.
    const data = await prepareData(config);
    const train = GpuDataset.upload(data.train, { labels: data.labels, stats: data.stats });
    const init = buildNetwork(config, {
      numClasses: K,
      channels: 3,
      height: 16,
      width: 16,
      nTrain: data.train.n,
    });
    const g0 = await meanClassGamma(init.model, train, K);
    init.model.dispose();
    let g1 = NaN;
    const result = await trainRun(config, {
      async onFinish({ model, train: tr }) {
        g1 = await meanClassGamma(model, tr, K);
      },
    });
    train.dispose();
    const gs = gammaSimplex(K);
    assert(
      Math.abs(g1 - gs) < Math.abs(g0 - gs),
      `γ across class means should approach the simplex value ${gs}: start ${g0}, end ${g1}`,
    );
    const rows = (await readCsv(result.paths.metrics, { numbers: true })).filter((r) => r.loss !== "");
    // SC loss is a sum over the b anchors; loss_per_sample = loss / b.
    assertAlmostEquals(rows[0].loss_per_sample as number, (rows[0].loss as number) / 16, 1e-6);
    assert((rows.at(-1)!.loss as number) < (rows[0].loss as number), "SC loss should fall");
    const m = result.metrics!;
    assert(Number.isFinite(m.probeLoss!) && m.testError <= 1 && m.trainError <= 1);
    const file = await loadSafetensors(result.paths.checkpoint);
    assertEquals(file.tensors["probe.weight"].shape, [K, 32]);
    assertEquals(file.tensors["layer4.1.bn2.running_mean"].shape, [32]);
    assert(
      !("bn.running_mean" in file.tensors) && !("bn1.weight" in file.tensors),
      "preact: no stem or final BN",
    );
    assert(!("classifier.weight" in file.tensors));
    await Deno.remove(out, { recursive: true });
  },
});

const CIFAR10_DIR = "../shared/data/cifar-10-batches-bin";
const hasCifar = (() => {
  try {
    return Deno.statSync(`${CIFAR10_DIR}/data_batch_1.bin`).isFile;
  } catch {
    return false;
  }
})();

Deno.test({
  name: "trainRun (CIFAR-10 subset): balanced subset, corrupted labels saved, a few steps of 32×32 training",
  ignore: !hasCifar,
  ...gpuTest,
  async fn() {
    await setup();
    const out = await Deno.makeTempDir({ prefix: "train_cifar_" });
    const config: TrainConfig = {
      ...tiny(out),
      dataset: "cifar10",
      data: CIFAR10_DIR,
      trainSubset: 40,
      testSubset: 20,
      corruption: 0.25,
      iterations: 4,
      loss: "ce-fix",
    };
    const data = await prepareData(config);
    assertEquals(data.train.n, 40);
    assertEquals(data.test.n, 20);
    assertEquals([...new Set(data.train.labels)].length, 10);
    let changed = 0;
    for (let i = 0; i < 40; i++) if (data.labels[i] !== data.train.labels[i]) changed++;
    assertEquals(changed, 10, "⌊0.25·40⌋ labels moved to a wrong class");
    const result = await trainRun(config);
    assertEquals(result.status, "completed");
    const corruption = JSON.parse(await Deno.readTextFile(result.paths.corruption!));
    assertEquals(corruption.count, 10);
    assertEquals(corruption.indices, [...data.corruptedIndices]);
    const m = result.metrics!;
    assert(m.trainError >= 0 && m.trainErrorClean >= 0 && m.testError >= 0);
    // CE-fix: the classifier is the fixed unit simplex, saved but never trained (no momentum buffer).
    const file = await loadSafetensors(result.paths.checkpoint);
    const w = file.tensors["classifier.weight"].data as Float32Array;
    assertEquals(file.tensors["classifier.weight"].shape, [10, 32]);
    assertAlmostEquals(Math.hypot(...w.subarray(0, 32)), 1, 1e-5, "unit-norm vertex");
    assert(!("optimizer.momentum.classifier.weight" in file.tensors));
    await Deno.remove(out, { recursive: true });
  },
});
