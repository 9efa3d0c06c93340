/// <reference lib="dom" />
/**
 * Panel "Train on CIFAR-10 in the page": the user drops the official `cifar-10-binary.tar.gz` (or the
 * extracted `.bin` files); the page decodes them locally (gunzip with `DecompressionStream`, tar with
 * nanotar, records with `data/cifar.ts`) and trains ResNet-18 with CE, CE-fix or SC as Section 5 does
 * (the `train/` room's GPU dataset and batch feed, evaluation and checkpoint payload; lr·(1 − t/T)^5,
 * SGD with momentum 0.9 and weight decay 1e-4, τ = 0.1). It shows progress (images/s, ETA), the loss
 * curve, the test error (SC: a linear probe on the sphere features, as the paper) and the three γ
 * histograms of Fig. 7, pauses and resumes, and downloads a checkpoint that `deno task geometry
 * --checkpoint FILE --data DIR` reads.
 *
 * @module
 */
// deno-lint-ignore no-import-prefix -- pinned inline, as experiments/lib/plot.ts pins vega
import { parseTar } from "npm:nanotar@0.3.0";
import {
  cifar10Dataset,
  classMeans,
  crossEntropy,
  type Dataset,
  gammaSimplex,
  gammaToClassMeans,
  gunzip,
  IidSampler,
  isGzip,
  LinearClassifier,
  normalizeToSphere,
  pairwiseGamma,
  polynomialLr,
  ResNet18,
  Rng,
  SGD,
  SimplexClassifier,
  supConLoss,
  type Tensor,
  tidy,
  toRows,
} from "../mod.ts";
import { BatchFeed, GpuDataset } from "../train/data_gpu.ts";
import {
  type Encoder,
  evaluateError,
  extractFeatures,
  sphereEncoder,
  trainProbe,
} from "../train/evaluate.ts";
import { checkpointPayload } from "../train/checkpoint.ts";
import { encodeSafetensors } from "../train/safetensors.ts";
import { TrainState } from "../train/state.ts";
import { PAPER_TRAINING } from "../experiments/paper.ts";
import { drawHistogram, drawLineChart } from "./chart.ts";
import { $, acquireGpu, numberInput, PauseGate, releaseGpu, RunStopped, setText } from "./ui.ts";

/**
 * The `format` of Section 5 checkpoints (`experiments/section5/checkpoint.ts`'s CHECKPOINT_FORMAT; that
 * module reads files with Deno, so the page names the value; tests/web_test.ts loads a downloaded
 * checkpoint with `deno task geometry`).
 */
export const SECTION5_CHECKPOINT_FORMAT = "dissecting-supcon/section5-train/1";

/** The CIFAR-10 files found in what the user dropped. */
export interface CifarFiles {
  /** data_batch_1.bin … data_batch_5.bin (those present, in order). */
  train: { file: string; bytes: Uint8Array }[];
  /** test_batch.bin, when present. */
  test: { file: string; bytes: Uint8Array }[];
}

const TRAIN_NAMES = [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`);

/** Sorts dropped files (tar.gz, tar or .bin) into the CIFAR-10 train and test files, by base name. */
export async function collectCifarFiles(
  files: readonly { name: string; bytes: Uint8Array }[],
): Promise<CifarFiles> {
  const found = new Map<string, { file: string; bytes: Uint8Array }>();
  for (const f of files) {
    let bytes = f.bytes;
    if (isGzip(bytes)) bytes = await gunzip(bytes);
    if (f.name.endsWith(".bin")) {
      found.set(f.name.split("/").pop()!, { file: f.name, bytes });
      continue;
    }
    for (const entry of parseTar(bytes)) {
      const base = entry.name.split("/").pop()!;
      if (entry.data && base.endsWith(".bin")) {
        found.set(base, { file: `${f.name}:${entry.name}`, bytes: entry.data });
      }
    }
  }
  const train = TRAIN_NAMES.filter((n) => found.has(n)).map((n) => found.get(n)!);
  const test = found.has("test_batch.bin") ? [found.get("test_batch.bin")!] : [];
  return { train, test };
}

/** Settings of a run (the Section 5 names, as the checkpoint's `config` stores them). */
export interface CifarRunConfig {
  loss: "ce" | "ce-fix" | "sc";
  width: number;
  iterations: number;
  batch: number;
  augment: boolean;
  seed: number;
  probeIterations: number;
}

/** A training run in the page: its data on the GPU, network, optimiser and state. */
class CifarRun {
  readonly train: GpuDataset;
  readonly test: GpuDataset | null;
  readonly model: ResNet18;
  readonly classifier: LinearClassifier | SimplexClassifier | null;
  probe: LinearClassifier | null = null;
  readonly sgd: SGD;
  readonly feed: BatchFeed;
  readonly state: TrainState;
  readonly curve: { x: number; y: number }[] = [];
  readonly radius = 1 / Math.sqrt(PAPER_TRAINING.tau);
  readonly lr = PAPER_TRAINING.lr;
  readonly lrPower = 5;

  constructor(readonly config: CifarRunConfig, trainSet: Dataset, testSet: Dataset | null) {
    this.train = GpuDataset.upload(trainSet);
    this.test = testSet ? GpuDataset.upload(testSet, { stats: this.train.stats }) : null;
    this.model = new ResNet18({ variant: "standard", width: config.width, inChannels: 3, seed: config.seed });
    this.classifier = config.loss === "ce"
      ? new LinearClassifier(this.model.featureDim, 10, { bias: false, seed: config.seed + 1 })
      : config.loss === "ce-fix"
      ? new SimplexClassifier(this.model.featureDim, 10, 1)
      : null;
    this.model.train();
    const params = [...this.model.parameters(), ...(this.classifier?.parameters() ?? [])];
    this.sgd = new SGD(params, {
      lr: this.lr,
      momentum: PAPER_TRAINING.momentum,
      weightDecay: PAPER_TRAINING.weightDecay,
    });
    const sampler = new IidSampler(this.train.n, config.batch, new Rng(config.seed * 7919 + 11));
    const augRng = new Rng(config.seed * 7919 + 13);
    this.feed = new BatchFeed(this.train, { sampler, augment: config.augment ? augRng : null });
    this.state = new TrainState({
      modules: { "": this.model, "classifier.": this.classifier, "probe.": null },
      optimizer: this.sgd,
      rngs: { sampler, augRng },
    });
  }

  /** Records one step (nothing read back); returns the loss tensor. */
  step(): Tensor {
    const t = this.state.step;
    const loss = tidy(() => {
      const { x, y } = this.feed.next();
      const features = this.model.forward(x);
      const logits = this.classifier?.forward(features);
      const loss = logits ? crossEntropy(logits, y) : supConLoss(normalizeToSphere(features, this.radius), y);
      this.sgd.zeroGrad();
      loss.backward(undefined, { releaseIntermediates: true });
      this.sgd.step(polynomialLr(this.lr, t, this.config.iterations, this.lrPower));
      return loss;
    });
    this.state.step++;
    return loss;
  }

  /** The encoder a head reads (SC: features projected to the sphere of radius 1/√τ). */
  encoder(): Encoder {
    return this.config.loss === "sc" ? sphereEncoder(this.model, this.radius) : this.model;
  }

  /** Test error and the Fig. 7 γ statistics of the current weights (trains the SC probe first). */
  async evaluate(onProgress: (text: string) => void): Promise<{
    testError: number | null;
    gammaMeans: Float64Array;
    gammaWeights: Float64Array;
    gammaWithin: Float64Array;
  }> {
    onProgress("features of the training set…");
    const fs = await extractFeatures(this.encoder(), this.train, { batchSize: 256 });
    if (this.config.loss === "sc") {
      onProgress(`linear probe (${this.config.probeIterations} iterations)…`);
      this.probe?.dispose();
      this.probe = (await trainProbe(fs, {
        numClasses: 10,
        iterations: this.config.probeIterations,
        seed: this.config.seed,
      })).probe;
      (this.state.modules as Record<string, unknown>)["probe."] = this.probe;
    }
    const head = this.classifier ?? this.probe!;
    let testError: number | null = null;
    if (this.test) {
      onProgress("test error…");
      testError = (await evaluateError(this.encoder(), head, this.test, { batchSize: 256 })).error;
    }
    const rows = toRows({ data: fs.features, dim: fs.dim });
    const means = classMeans(rows, fs.labels, 10);
    const W = toRows({ data: await head.weight.toArray() as Float32Array, dim: fs.dim });
    return {
      testError,
      gammaMeans: pairwiseGamma(means),
      gammaWeights: pairwiseGamma(W),
      gammaWithin: gammaToClassMeans(rows, fs.labels, means),
    };
  }

  /** The whole state as a Section 5 checkpoint (safetensors bytes). */
  async checkpoint(final: boolean): Promise<Uint8Array> {
    const c = this.config;
    const config = {
      dataset: "cifar10",
      loss: c.loss,
      model: "resnet18",
      width: c.width,
      iterations: c.iterations,
      batch: c.batch,
      lr: this.lr,
      momentum: PAPER_TRAINING.momentum,
      weightDecay: PAPER_TRAINING.weightDecay,
      lrPower: this.lrPower,
      augment: c.augment,
      tau: PAPER_TRAINING.tau,
      seed: c.seed,
      probeIterations: c.probeIterations,
      sampler: "iid",
    };
    const data = { numClasses: 10, channels: 3, height: 32, width: 32, nTrain: this.train.n };
    const payload = await checkpointPayload({
      named: this.state.namedTensors(),
      format: SECTION5_CHECKPOINT_FORMAT,
      step: this.state.step,
      metadata: {
        config: JSON.stringify(config),
        config_hash: "",
        data: JSON.stringify(data),
        source: "web",
      },
      state: this.state.savedState(),
      final,
    });
    if (payload.nonFinite.length) {
      throw new Error(`non-finite values in ${payload.nonFinite.slice(0, 3).join(", ")}`);
    }
    return encodeSafetensors(payload.tensors, payload.metadata);
  }

  dispose(): void {
    this.feed.dispose();
    this.sgd.dispose();
    this.model.dispose();
    this.classifier?.dispose();
    this.probe?.dispose();
    this.train.dispose();
    this.test?.dispose();
  }
}

function secondsText(s: number): string {
  if (!Number.isFinite(s)) return "—";
  if (s < 90) return `${s.toFixed(0)} s`;
  if (s < 5400) return `${(s / 60).toFixed(1)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

/** Wires the panel (elements under `#cifar`). */
export function mountCifar(): void {
  const input = $<HTMLInputElement>("cifar-files");
  const zone = $("cifar-drop");
  const dataStatus = $("cifar-data-status");
  const form = $<HTMLFormElement>("cifar-form");
  const start = $<HTMLButtonElement>("cifar-start");
  const pause = $<HTMLButtonElement>("cifar-pause");
  const evalButton = $<HTMLButtonElement>("cifar-eval");
  const download = $<HTMLButtonElement>("cifar-download");
  const progress = $<HTMLProgressElement>("cifar-progress");
  const status = $("cifar-status");
  const chart = $<HTMLCanvasElement>("cifar-loss");
  let run: CifarRun | null = null;
  const gate = new PauseGate(pause, (held) => {
    evalButton.disabled = !held;
    download.disabled = !held;
    form.dataset.state = held ? "paused" : "running";
    if (held && run) {
      setText(status, `paused at step ${run.state.step}: resume, evaluate or download a checkpoint`);
    }
  });
  let data: { train: Dataset; test: Dataset | null } | null = null;
  let busy = false;

  const drawGammas = (g?: Awaited<ReturnType<CifarRun["evaluate"]>>) => {
    const simplex = gammaSimplex(10);
    const panels: [string, string, Float64Array | undefined, number | undefined][] = [
      ["cifar-gamma-means", "γ(μ_i, μ_j): class means", g?.gammaMeans, simplex],
      ["cifar-gamma-weights", "γ(w_i, w_j): classifier rows", g?.gammaWeights, simplex],
      ["cifar-gamma-within", "γ(z_n, μ_y): within class", g?.gammaWithin, 1],
    ];
    for (const [id, title, values, mark] of panels) {
      drawHistogram($<HTMLCanvasElement>(id), values ?? new Float64Array(), {
        title,
        xLabel: "γ",
        marker: mark,
        bins: 30,
      });
    }
  };

  const loadFiles = async (files: readonly File[]) => {
    if (busy) return;
    setText(dataStatus, `reading ${files.length} file(s) locally…`);
    try {
      const got = await collectCifarFiles(
        await Promise.all(
          files.map(async (f) => ({ name: f.name, bytes: new Uint8Array(await f.arrayBuffer()) })),
        ),
      );
      if (got.train.length === 0) throw new Error("no data_batch_*.bin among them (CIFAR-10 binary version)");
      const train = await cifar10Dataset("train", got.train);
      const test = got.test.length ? await cifar10Dataset("test", got.test) : null;
      data = { train, test };
      run?.dispose();
      run = null;
      setText(
        dataStatus,
        `CIFAR-10: ${train.n.toLocaleString("en")} training images (${got.train.length} file(s))` +
          (test ? `, ${test.n.toLocaleString("en")} test images` : ", no test_batch.bin (no test error)") +
          ". Read in this page; nothing was uploaded.",
      );
      start.disabled = false;
      form.dataset.state = "loaded";
    } catch (e) {
      setText(dataStatus, `could not read the files: ${(e as Error).message}`);
      form.dataset.state = "failed";
    }
  };

  input.addEventListener("change", () => loadFiles([...(input.files ?? [])]));
  zone.addEventListener("dragover", (e) => {
    e.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    loadFiles([...(e.dataTransfer?.files ?? [])]);
  });

  const evaluate = async () => {
    if (!run) return;
    const g = await run.evaluate((t) => setText(status, `evaluating: ${t}`));
    const err = $("cifar-error");
    err.textContent = g.testError === null ? "no test set" : `${(100 * g.testError).toFixed(2)} %`;
    err.dataset.value = String(g.testError);
    drawGammas(g);
    setText(status, `evaluated at step ${run.state.step}`);
  };

  const train = async () => {
    if (busy || !data) return;
    let cfg: CifarRunConfig;
    try {
      cfg = {
        loss: $<HTMLSelectElement>("cifar-loss-kind").value as CifarRunConfig["loss"],
        width: Number($<HTMLSelectElement>("cifar-width").value),
        iterations: numberInput("cifar-iterations", { int: true, min: 1 }),
        batch: numberInput("cifar-batch", { int: true, min: 2 }),
        augment: $<HTMLInputElement>("cifar-augment").checked,
        seed: numberInput("cifar-seed", { int: true, min: 0 }),
        probeIterations: numberInput("cifar-probe", { int: true, min: 0 }),
      };
    } catch (e) {
      setText(status, (e as Error).message);
      return;
    }
    const other = acquireGpu("CIFAR-10 training");
    if (other) {
      setText(status, `${other} is using the GPU (running or paused): finish or reset it first`);
      return;
    }
    busy = true;
    start.disabled = true;
    download.disabled = true;
    evalButton.disabled = true;
    pause.disabled = false;
    gate.reset();
    form.dataset.state = "running";
    try {
      const resume = run !== null && run.state.step < run.config.iterations &&
        JSON.stringify(run.config) === JSON.stringify(cfg);
      if (!resume) {
        run?.dispose();
        run = new CifarRun(cfg, data.train, data.test);
        $("cifar-error").textContent = "—";
        drawGammas();
      }
      const r = run!;
      const T = cfg.iterations;
      const logEvery = T <= 200 ? 1 : 5;
      progress.max = T;
      let t0 = performance.now();
      const s0 = r.state.step;
      try {
        while (r.state.step < T) {
          const loss = r.step();
          if (r.state.step % logEvery === 0 || r.state.step === T) {
            const value = await loss.item();
            loss.dispose();
            r.curve.push({ x: r.state.step, y: value });
            const rate = ((r.state.step - s0) * cfg.batch) / ((performance.now() - t0) / 1000);
            const eta = ((T - r.state.step) * cfg.batch) / rate;
            progress.value = r.state.step;
            setText(
              status,
              `step ${r.state.step} / ${T} · loss ${value.toFixed(4)} · ${rate.toFixed(1)} images/s · ETA ${
                secondsText(eta)
              }`,
            );
            drawLineChart(chart, [{
              name: `${cfg.loss.toUpperCase()} loss`,
              color: "#1f77b4",
              points: r.curve,
            }], {
              title: "training loss",
              xLabel: "iteration",
              yLabel: "loss",
              xDomain: [0, T],
            });
            if (!Number.isFinite(value)) throw new Error(`the loss is not finite at step ${r.state.step}`);
            const f0 = performance.now();
            await gate.frame();
            t0 += performance.now() - f0; // time held paused does not count against the rate
          } else loss.dispose();
        }
      } finally {
        pause.disabled = true;
      }
      pause.disabled = true;
      await evaluate();
      form.dataset.state = "done";
    } catch (e) {
      if (!(e instanceof RunStopped)) {
        console.error(e);
        setText(status, `failed: ${(e as Error).message}`);
        form.dataset.state = "failed";
      }
    } finally {
      busy = false;
      releaseGpu("CIFAR-10 training");
      start.disabled = false;
      pause.disabled = true;
      download.disabled = run === null;
      evalButton.disabled = run === null;
    }
  };

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    train();
  });
  evalButton.addEventListener("click", async () => {
    if (!run || (busy && !gate.paused)) return;
    const other = acquireGpu("CIFAR-10 training");
    if (other) {
      setText(status, `${other} is using the GPU (running or paused): finish or reset it first`);
      return;
    }
    evalButton.disabled = true;
    try {
      await evaluate();
    } catch (e) {
      setText(status, `evaluation failed: ${(e as Error).message}`);
    } finally {
      evalButton.disabled = false;
      if (!busy) releaseGpu("CIFAR-10 training");
    }
  });
  download.addEventListener("click", async () => {
    if (!run || (busy && !gate.paused)) return;
    const other = acquireGpu("CIFAR-10 training");
    if (other) {
      setText(status, `${other} is using the GPU (running or paused): finish or reset it first`);
      return;
    }
    try {
      const bytes = await run.checkpoint(run.state.step >= run.config.iterations);
      const url = URL.createObjectURL(new Blob([bytes as BlobPart], { type: "application/octet-stream" }));
      const a = document.createElement("a");
      a.href = url;
      a.download = `cifar10-${run.config.loss}-step${run.state.step}.safetensors`;
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
      setText(
        status,
        `checkpoint of step ${run.state.step} downloaded (${(bytes.length / 1e6).toFixed(1)} MB): ` +
          `deno task geometry --checkpoint ${a.download} --data <the CIFAR-10 folder>`,
      );
    } catch (e) {
      setText(status, `checkpoint failed: ${(e as Error).message}`);
    } finally {
      if (!busy) releaseGpu("CIFAR-10 training");
    }
  });
  drawLineChart(chart, [], { title: "training loss", xLabel: "iteration", yLabel: "loss" });
  drawGammas();
  input.disabled = false;
}
