/**
 * Peer benchmark: our engine against TensorFlow.js's WebGPU backend and jax-js's WebGPU device (same
 * process, same adapter, samples interleaved; jax-js on the matmul, Gram and convolution cases) and, with
 * `--torch`, PyTorch on the CPU (2 threads, a separate process), with
 * `--torch-cuda`, PyTorch on a CUDA GPU in fp32 with TF32 off and with TF32 on (a separate process).
 *
 *   deno task bench [--quick] [--cases matmul,conv,resnet,supcon] [--torch] [--slow-peers] [--no-tfjs] [--no-jax]
 *                   [--json out.json] [--iters N] [--inner K] [--resnet-batches 8,32,256]
 *                   [--torch-cuda [--python python3]] [--torch-jsonl FILE]
 *
 * Every sample times k iterations (`--inner`, default 1) plus one readback of a scalar, divided by k;
 * nothing is subtracted. Table cells: median (min–max) ms per iteration; ratios are time ours/peer
 * (< 1: ours is faster). On a hardware adapter the ResNet-18 step also runs at batch 256 and the TF.js
 * cases that are slow on the software adapter run too.
 */
import { parseArgs } from "node:util";
import { gpu, initDevice } from "../engine/gpu.ts";
import "../engine/autograd.ts";
import { empty, type Tensor, tensor } from "../engine/tensor.ts";
import { tidy } from "../engine/scope.ts";
import { matmul } from "../engine/ops/matmul.ts";
import {
  conv2dForwardInto,
  conv2dGradInputInto,
  conv2dGradWeightInto,
  convGeometry,
} from "../engine/ops/conv.ts";
import { crossEntropy, supConLoss } from "../engine/ops/loss.ts";
import { ResNet18 } from "../models/resnet.ts";
import { LinearClassifier } from "../models/classifier.ts";
import { SGD } from "../engine/optim/sgd.ts";
import {
  type BenchCase,
  type CaseResult,
  convFlop,
  type ConvShape,
  environment,
  errorNote,
  fmtGflops,
  fmtMs,
  fmtRatio,
  fmtStats,
  markdownTable,
  resnet18Convs,
  resnet18StepFlop,
  supConFlop,
  timeInterleaved,
} from "./harness.ts";

// ---------------------------------------------------------------------------------------------
// Our engine's cases

function rand(n: number, seed: number, scale = 1): Float32Array {
  let a = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    // mulberry32 + Box–Muller: normal(0, scale)
    const next = () => {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = a;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296;
    };
    const r = Math.sqrt(-2 * Math.log(next()));
    const th = 2 * Math.PI * next();
    out[i] = scale * r * Math.cos(th);
    if (i + 1 < n) out[i + 1] = scale * r * Math.sin(th);
  }
  return out;
}

function labelsFor(n: number, classes: number, seed: number): Int32Array {
  const u = rand(n, seed);
  return Int32Array.from(u, (v) => Math.min(classes - 1, Math.floor((0.5 + 0.5 * Math.tanh(v)) * classes)));
}

/** Points on the sphere of radius √10 (τ = 0.1), rows of [b, d]. */
function spherePoints(b: number, d: number, seed: number): Float32Array {
  const z = rand(b * d, seed);
  for (let i = 0; i < b; i++) {
    let s = 0;
    for (let j = 0; j < d; j++) s += z[i * d + j] ** 2;
    const f = Math.sqrt(10 / s);
    for (let j = 0; j < d; j++) z[i * d + j] *= f;
  }
  return z;
}

/** A case of our engine whose step produces one tensor (the previous one is disposed). */
function oursCase(inputs: Tensor[], produce: () => Tensor): BenchCase {
  let out: Tensor | null = null;
  return {
    step: () => {
      out?.dispose();
      out = produce();
      gpu().flush(); // submit each iteration, as a training loop does
    },
    sync: async () => {
      if (out) await gpu().read({ ...out.range, size: 4 });
      else await gpu().sync();
    },
    dispose: () => {
      out?.dispose();
      out = null;
      for (const t of inputs) t.dispose();
    },
  };
}

function oursMatmul(m: number, k: number, n: number, transB: boolean): BenchCase {
  const a = tensor(rand(m * k, 1), [m, k]);
  const b = tensor(rand(k * n, 2), transB ? [n, k] : [k, n]);
  return oursCase([a, b], () => matmul(a, b, { transB }));
}

function oursConv(c: ConvShape, pass: "forward" | "grad-input" | "grad-weight"): BenchCase {
  const x = tensor(rand(c.n * c.cin * c.h * c.w, 3), [c.n, c.cin, c.h, c.w]);
  const w = tensor(rand(c.cout * c.cin * c.k * c.k, 4, Math.sqrt(2 / (c.cin * c.k * c.k))), [
    c.cout,
    c.cin,
    c.k,
    c.k,
  ]);
  const g = convGeometry(x, w, c.stride, c.pad);
  const dy = tensor(rand(g.N * g.O * g.OH * g.OW, 5), [g.N, g.O, g.OH, g.OW]);
  const inputs = [x, w, dy];
  if (pass === "forward") {
    return oursCase(inputs, () => {
      const y = empty([g.N, g.O, g.OH, g.OW]);
      conv2dForwardInto(y, x, w, g);
      return y;
    });
  }
  if (pass === "grad-input") {
    return oursCase(inputs, () => {
      const dx = empty(x.shape);
      conv2dGradInputInto(dx, dy, w, g);
      return dx;
    });
  }
  return oursCase(inputs, () => {
    const dw = empty(w.shape);
    conv2dGradWeightInto(dw, x, dy, g);
    return dw;
  });
}

function oursResNetStep(batch: number): BenchCase {
  const model = new ResNet18({ width: 1, seed: 7 });
  const classifier = new LinearClassifier(model.featureDim, 10, { seed: 8 });
  const opt = new SGD([...model.parameters(), ...classifier.parameters()], {
    lr: 0.01,
    momentum: 0.9,
    weightDecay: 1e-4,
  });
  const x = tensor(rand(batch * 3 * 32 * 32, 9), [batch, 3, 32, 32]);
  const y = tensor(labelsFor(batch, 10, 10), [batch], { dtype: "i32" });
  const c = oursCase([x, y], () =>
    tidy(() => {
      opt.zeroGrad();
      const loss = crossEntropy(classifier.forward(model.forward(x)), y);
      loss.backward(undefined, { releaseIntermediates: true }); // as the trainer runs it
      opt.step();
      return loss;
    }));
  return {
    ...c,
    dispose: () => {
      c.dispose();
      opt.dispose();
      model.dispose();
      classifier.dispose();
    },
  };
}

function oursSupCon(
  zData: Float32Array,
  labels: Int32Array,
  d: number,
): BenchCase & { loss: () => Promise<number> } {
  const b = labels.length;
  const z = tensor(zData, [b, d], { requiresGrad: true });
  const y = tensor(labels, [b], { dtype: "i32" });
  let last: Tensor | null = null;
  const c = oursCase([z, y], () => {
    last = tidy(() => {
      z.grad = undefined; // no accumulation across iterations
      const loss = supConLoss(z, y);
      loss.backward();
      return loss;
    });
    return last;
  });
  return { ...c, loss: async () => last ? (await last.toArray())[0] : NaN };
}

// ---------------------------------------------------------------------------------------------
// Case list

interface Spec {
  id: string;
  group: "matmul" | "conv" | "resnet" | "supcon";
  label: string;
  flop?: number;
  ours: () => BenchCase;
  peer: () => Promise<BenchCase>;
  /** Why the peer is skipped in this run (slow cases), or undefined. */
  peerSkip?: string;
  /** The jax-js case, where one is written. */
  jax?: () => Promise<BenchCase>;
  iters: number;
  budgetMs: number;
  /** Calls per sample (k). */
  inner: number;
  /** Runs after the warm-up, before sampling (cross-checks), returning a note. */
  check?: (ours: BenchCase, peer: BenchCase) => Promise<string>;
}

type Tfjs = typeof import("./peers/tfjs.ts");
type Jaxjs = typeof import("./peers/jaxjs.ts");

/** Calls per sample of a ResNet step: `inner` at batch 8, fewer for larger batches (as torch_cuda.py). */
export function resnetInner(inner: number, batch: number): number {
  return Math.max(1, Math.floor(inner * 8 / batch));
}

/** ResNet-18 step batches: 8 (quick), 8 and 32 on the software adapter, also 256 on a GPU. */
export function resnetBatches(opts: { quick: boolean; hardware: boolean; list?: string }): number[] {
  if (opts.list) {
    const batches = opts.list.split(",").map((s) => Number(s.trim()));
    if (batches.some((b) => !Number.isInteger(b) || b < 1)) {
      throw new Error(`bad --resnet-batches ${opts.list}`);
    }
    return batches;
  }
  return opts.quick ? [8] : opts.hardware ? [8, 32, 256] : [8, 32];
}

function buildSpecs(
  opts: { quick: boolean; slowPeers: boolean; iters?: number; inner: number; batches: number[] },
  tfjs: () => Promise<Tfjs>,
  jaxjs: () => Promise<Jaxjs>,
): Spec[] {
  const { quick, slowPeers, inner } = opts;
  const specs: Spec[] = [];
  const it = (n: number) => opts.iters ?? (quick ? Math.min(n, 3) : n);
  const budget = quick ? 4000 : 10000;

  specs.push({
    id: "matmul-1024",
    group: "matmul",
    label: "matmul 1024×1024 · 1024×1024",
    flop: 2 * 1024 ** 3,
    ours: () => oursMatmul(1024, 1024, 1024, false),
    peer: async () => (await tfjs()).tfMatmul(1024, 1024, 1024),
    jax: async () => (await jaxjs()).jaxMatmul(1024, 1024, 1024),
    iters: it(5),
    budgetMs: budget,
    inner,
  });
  for (const b of quick ? [256, 1024] : [256, 1024, 4096]) {
    specs.push({
      id: `gram-${b}`,
      group: "matmul",
      label: `Gram z·zᵀ, z ${b}×512`,
      flop: 2 * b * b * 512,
      ours: () => oursMatmul(b, 512, b, true),
      peer: async () => (await tfjs()).tfMatmul(b, 512, b, { transB: true }),
      jax: async () => (await jaxjs()).jaxMatmul(b, 512, b, { transB: true }),
      iters: it(b >= 4096 ? 3 : 5),
      budgetMs: budget,
      inner,
    });
  }

  const convs = resnet18Convs(8);
  const chosen = quick
    ? convs.filter((c) =>
      ["64→64 3×3 s1 @32²", "128→256 3×3 s2 @16²", "128→256 1×1 s2 @16²"].includes(c.label)
    )
    : convs;
  for (const c of chosen) {
    for (const pass of ["forward", "grad-input", "grad-weight"] as const) {
      specs.push({
        id: `conv-${c.cin}-${c.cout}-k${c.k}-s${c.stride}-h${c.h}-${pass}`,
        group: "conv",
        label: `conv ${c.label} ×${c.count}, batch 8, ${pass}`,
        flop: convFlop(c),
        ours: () => oursConv(c, pass),
        peer: async () => (await tfjs()).tfConv(c, pass),
        jax: async () => (await jaxjs()).jaxConv(c, pass),
        iters: it(5),
        budgetMs: budget,
        inner,
      });
    }
  }

  for (const batch of opts.batches) {
    const slow = batch >= 32 || quick;
    specs.push({
      id: `resnet18-step-b${batch}`,
      group: "resnet",
      label: `ResNet-18 train step (CE, SGD momentum), batch ${batch}`,
      flop: resnet18StepFlop(batch),
      ours: () => oursResNetStep(batch),
      peer: async () => (await tfjs()).tfResNetStep(batch),
      peerSkip: slow && !slowPeers
        ? `TF.js skipped: about ${batch === 8 ? "40 s" : "3 min"} per step here (--slow-peers runs it)`
        : undefined,
      iters: it(batch === 8 ? 5 : 3),
      budgetMs: batch === 8 ? 20000 : 30000,
      inner: resnetInner(inner, batch),
    });
  }

  for (const b of quick ? [256, 1024] : [256, 1024, 4096]) {
    const d = 512;
    const z = spherePoints(b, d, 20 + b);
    const labels = labelsFor(b, 10, 21 + b);
    let oursLoss: (() => Promise<number>) | null = null;
    let peerLoss: (() => Promise<number>) | null = null;
    specs.push({
      id: `supcon-b${b}`,
      group: "supcon",
      label: `SC loss forward + backward, b ${b}, d ${d}`,
      flop: supConFlop(b, d),
      ours: () => {
        const c = oursSupCon(z, labels, d);
        oursLoss = c.loss;
        return c;
      },
      peer: async () => {
        const c = (await tfjs()).tfSupCon(b, d, { data: z, labels });
        peerLoss = c.loss;
        return c;
      },
      peerSkip: b >= 4096 && !slowPeers
        ? "TF.js skipped: about 40 s per iteration here (--slow-peers runs it)"
        : undefined,
      iters: it(b >= 4096 ? 3 : 5),
      budgetMs: budget,
      inner,
      check: async () => {
        if (!oursLoss || !peerLoss) return "";
        const [a, p] = [await oursLoss(), await peerLoss()];
        return `loss ours ${a.toPrecision(9)}, TF.js ${p.toPrecision(9)} (rel. diff ${
          (Math.abs(a - p) / Math.abs(p)).toExponential(1)
        })`;
      },
    });
  }
  return specs;
}

// ---------------------------------------------------------------------------------------------
// PyTorch (separate process)

/** One line of torch_cpu.py / torch_cuda.py output. */
interface TorchLine {
  id: string;
  /** torch_cuda.py: `fp32` (TF32 off) or `tf32`; absent for torch_cpu.py. */
  mode?: string;
  median?: number;
  min?: number;
  max?: number;
  samples?: number[];
  error?: string;
  info?: Record<string, unknown>;
}

/** A PyTorch column of the table: which peer output and mode it shows. */
interface TorchColumn {
  /** Key in `CaseResult.results` / `notes`. */
  key: string;
  /** Mode of the lines it takes (`""` for torch_cpu.py). */
  mode: string;
  /** Column title. */
  title: string;
  /** Name in the ratio column. */
  short: string;
}

const TORCH_CPU: TorchColumn = { key: "torch", mode: "", title: "PyTorch CPU", short: "PyTorch" };
const TORCH_CUDA: TorchColumn[] = [
  { key: "torch-fp32", mode: "fp32", title: "PyTorch CUDA fp32", short: "PyTorch fp32" },
  { key: "torch-tf32", mode: "tf32", title: "PyTorch CUDA TF32", short: "PyTorch TF32" },
];

/** What a PyTorch peer printed: its info line, per-mode info, and results by mode, then case id. */
export interface TorchOutput {
  info: Record<string, unknown>;
  modes: Record<string, Record<string, unknown>>;
  results: Map<string, Map<string, TorchLine>>;
}

/** Parses the JSON lines of torch_cpu.py or torch_cuda.py (other lines are ignored). */
export function parseTorchLines(text: string): TorchOutput {
  const out: TorchOutput = { info: {}, modes: {}, results: new Map() };
  for (const line of text.split("\n")) {
    if (!line.startsWith("{")) continue;
    const r = JSON.parse(line) as TorchLine;
    const mode = r.mode ?? "";
    if (r.id === "info") out.info = r.info ?? {};
    else if (r.id === "mode-info") out.modes[mode] = r.info ?? {};
    else {
      if (!out.results.has(mode)) out.results.set(mode, new Map());
      out.results.get(mode)!.set(r.id, r);
    }
  }
  return out;
}

/** Runs a PyTorch peer script with `python`, returning its parsed output. */
async function runTorch(python: string, script: string, args: string[]): Promise<TorchOutput> {
  const env = Deno.env.toObject();
  // Set on some machines for old OpenBLAS builds; they slow a current one (bench only, not tests).
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  env.PYTHONDONTWRITEBYTECODE = "1";
  const path = new URL(`./peers/${script}`, import.meta.url).pathname;
  const command = new Deno.Command(python, {
    args: [path, ...args],
    env,
    clearEnv: true,
    stdout: "piped",
    stderr: "inherit",
  });
  const out = await command.output();
  const parsed = parseTorchLines(new TextDecoder().decode(out.stdout));
  if (!out.success && parsed.results.size === 0) {
    throw new Error(`${script} exited with ${out.code}${parsed.info.error ? `: ${parsed.info.error}` : ""}`);
  }
  return parsed;
}

/** Copies a PyTorch peer's results of one mode into the rows, under `column.key`. */
function mergeTorch(results: CaseResult[], torch: TorchOutput, column: TorchColumn): void {
  const byId = torch.results.get(column.mode) ?? new Map<string, TorchLine>();
  for (const r of results) {
    const t = byId.get(r.id);
    if (!t) {
      r.results[column.key] = null;
      r.notes[column.key] = `no ${column.title} case`;
    } else if (t.error || t.median === undefined) {
      r.results[column.key] = null;
      r.notes[column.key] = `failed: ${t.error ?? "no result"}`;
    } else {
      r.results[column.key] = { median: t.median, min: t.min!, max: t.max!, samples: t.samples ?? [] };
    }
  }
}

/** "ResNet-18 step ≥ 50% of PyTorch fp32": one line per ResNet row with a PyTorch CUDA fp32 time. */
export function resnetTargetLines(results: CaseResult[]): string[] {
  const lines: string[] = [];
  for (const r of results) {
    if (r.group !== "resnet") continue;
    const ours = r.results.ours;
    const fp32 = r.results["torch-fp32"];
    const tf32 = r.results["torch-tf32"];
    if (!ours || !fp32) continue;
    const share = fp32.median / ours.median;
    const extra = tf32
      ? `; TF32 ${fmtMs(tf32.median)} ms → ${(100 * tf32.median / ours.median).toFixed(0)}%`
      : "";
    lines.push(
      `- ${r.label}: ours ${fmtMs(ours.median)} ms, PyTorch CUDA fp32 ${
        fmtMs(fp32.median)
      } ms → ours runs at ` +
        `**${(100 * share).toFixed(0)}%** of PyTorch fp32's speed (target ≥ 50%: ${
          share >= 0.5 ? "met" : "not met"
        })${extra}`,
    );
  }
  return lines;
}

/**
 * The issue-12 targets on a software adapter, from one run's medians: the 1024³ matmul's GFLOP/s (≥ 40) and
 * its speed-up over jax-js (≥ 5×), the conv 3×3 64→64 forward + grad input + grad weight (the three passes'
 * medians summed) over jax-js (≥ 5×), and the ResNet-18 step at batch 8 over TF.js (≥ 20×).
 */
export function peerSpeedupLines(results: CaseResult[]): string[] {
  const byId = new Map(results.map((r) => [r.id, r]));
  const lines: string[] = [];
  const times = (ids: string[], key: string): number | null => {
    let sum = 0;
    for (const id of ids) {
      const s = byId.get(id)?.results[key];
      if (!s) return null;
      sum += s.median;
    }
    return sum;
  };
  const verdict = (x: number, target: number) =>
    `${x.toFixed(2)}× (target ≥ ${target}×: ${x >= target ? "met" : "not met"})`;
  const mm = byId.get("matmul-1024");
  if (mm?.results.ours && mm.flop) {
    const rate = mm.flop / mm.results.ours.median / 1e6;
    let line = `- matmul 1024³: ours ${fmtMs(mm.results.ours.median)} ms = ${
      rate.toFixed(1)
    } GFLOP/s (target ≥ 40: ${rate >= 40 ? "met" : "not met"})`;
    const jax = mm.results.jax;
    if (jax) {
      line += `; jax-js ${fmtMs(jax.median)} ms → ours ${verdict(jax.median / mm.results.ours.median, 5)}`;
    }
    const tf = mm.results.tfjs;
    if (tf) {
      line += `; TF.js ${fmtMs(tf.median)} ms → ours ${(tf.median / mm.results.ours.median).toFixed(1)}×`;
    }
    lines.push(line);
  }
  const convIds = ["forward", "grad-input", "grad-weight"].map((p) => `conv-64-64-k3-s1-h32-${p}`);
  const ours = times(convIds, "ours");
  if (ours !== null) {
    let line = `- conv 3×3 64→64 @32², batch 8, forward + grad input + grad weight: ours ${fmtMs(ours)} ms`;
    const jax = times(convIds, "jax");
    if (jax !== null) line += `; jax-js ${fmtMs(jax)} ms → ours ${verdict(jax / ours, 5)}`;
    const tf = times(convIds, "tfjs");
    if (tf !== null) line += `; TF.js ${fmtMs(tf)} ms → ours ${(tf / ours).toFixed(1)}×`;
    lines.push(line);
  }
  const step = byId.get("resnet18-step-b8");
  if (step?.results.ours && step.results.tfjs) {
    const x = step.results.tfjs.median / step.results.ours.median;
    lines.push(
      `- ResNet-18 step, batch 8: ours ${fmtMs(step.results.ours.median)} ms, TF.js ${
        fmtMs(step.results.tfjs.median)
      } ms → ours ${verdict(x, 20)}`,
    );
  }
  return lines;
}

// ---------------------------------------------------------------------------------------------
// Main

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      quick: { type: "boolean", default: false },
      torch: { type: "boolean", default: false },
      "slow-peers": { type: "boolean", default: false },
      "no-tfjs": { type: "boolean", default: false },
      "no-jax": { type: "boolean", default: false },
      "torch-cuda": { type: "boolean", default: false },
      "torch-jsonl": { type: "string" },
      python: { type: "string" },
      cases: { type: "string" },
      json: { type: "string" },
      iters: { type: "string" },
      inner: { type: "string", default: "1" },
      "resnet-batches": { type: "string" },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    console.log(
      "deno task bench [--quick] [--cases matmul,conv,resnet,supcon] [--torch] [--slow-peers] [--no-tfjs] " +
        "[--iters N] [--inner K] [--resnet-batches 8,32,256] [--json out.json]\n" +
        "  [--torch-cuda [--python python3]]  PyTorch on CUDA, TF32 off and on (bench/peers/torch_cuda.py)\n" +
        "  [--torch-jsonl FILE]                 read the lines of an earlier torch_cuda.py/torch_cpu.py run",
    );
    return;
  }
  const groups = values.cases ? new Set(values.cases.split(",").map((s) => s.trim())) : null;
  const inner = Number(values.inner);
  if (!Number.isInteger(inner) || inner < 1) throw new Error(`bad --inner ${values.inner}`);
  const g = await initDevice();
  const hardware = !g.report.isFallback;
  const env = await environment();
  let tfjsModule: Tfjs | null = null;
  let tfjsError: string | null = values["no-tfjs"] ? "disabled (--no-tfjs)" : null;
  let tfjsInfo = "";
  const tfjs = async (): Promise<Tfjs> => {
    if (tfjsError) throw new Error(tfjsError);
    if (!tfjsModule) {
      try {
        const m = await import("./peers/tfjs.ts");
        const info = await m.initTfjs();
        tfjsInfo = `tfjs-core ${info.version}, backend ${info.backend}, adapter ${info.adapter}`;
        tfjsModule = m;
      } catch (e) {
        tfjsError = `TF.js unavailable: ${errorNote(e)}`;
        throw e;
      }
    }
    return tfjsModule;
  };
  let jaxModule: Jaxjs | null = null;
  let jaxError: string | null = values["no-jax"] ? "disabled (--no-jax)" : null;
  let jaxInfo = "";
  const jaxjs = async (): Promise<Jaxjs> => {
    if (jaxError) throw new Error(jaxError);
    if (!jaxModule) {
      try {
        const m = await import("./peers/jaxjs.ts");
        const info = await m.initJaxjs();
        jaxInfo = `@jax-js/jax ${info.version}, device ${info.device}, adapter ${info.adapter}`;
        jaxModule = m;
      } catch (e) {
        jaxError = `jax-js unavailable: ${errorNote(e)}`;
        throw e;
      }
    }
    return jaxModule;
  };

  const specs = buildSpecs(
    {
      quick: values.quick,
      // The TF.js cases skipped for time on the software adapter take well under a second on a GPU.
      slowPeers: values["slow-peers"] || hardware,
      iters: values.iters ? Number(values.iters) : undefined,
      inner,
      batches: resnetBatches({ quick: values.quick, hardware, list: values["resnet-batches"] }),
    },
    tfjs,
    jaxjs,
  ).filter((s) => !groups || groups.has(s.group));

  console.error(`# ${env.date}  ours: ${g.report.name} (${g.report.isFallback ? "fallback" : "hardware"})`);
  const results: CaseResult[] = [];
  let torchInfo: Record<string, unknown> | null = null;
  let torchCudaInfo: Record<string, unknown> | null = null;
  const writeJson = async (partial: boolean) => {
    if (!values.json) return;
    const doc = {
      partial,
      env,
      ours: g.report.name,
      adapter: g.report,
      inner,
      tfjs: tfjsInfo || tfjsError,
      jax: jaxInfo || jaxError,
      torch: torchInfo,
      torchCuda: torchCudaInfo,
      results,
    };
    await Deno.writeTextFile(values.json, JSON.stringify(doc, null, 2));
  };
  for (const spec of specs) {
    const t0 = performance.now();
    const result: CaseResult = {
      id: spec.id,
      group: spec.group,
      label: spec.label,
      flop: spec.flop,
      results: {},
      notes: {},
    };
    const cases: BenchCase[] = [];
    const names: string[] = [];
    try {
      cases.push(spec.ours());
      names.push("ours");
    } catch (e) {
      result.results.ours = null;
      result.notes.ours = `not available: ${errorNote(e)}`;
    }
    if (spec.peerSkip) {
      result.results.tfjs = null;
      result.notes.tfjs = spec.peerSkip;
    } else {
      try {
        cases.push(await spec.peer());
        names.push("tfjs");
      } catch (e) {
        result.results.tfjs = null;
        result.notes.tfjs = tfjsError ?? `not available: ${errorNote(e)}`;
      }
    }
    if (spec.jax && !values["no-jax"]) {
      try {
        cases.push(await spec.jax());
        names.push("jax");
      } catch (e) {
        result.results.jax = null;
        result.notes.jax = jaxError ?? `not available: ${errorNote(e)}`;
      }
    }
    if (cases.length) {
      const { stats, errors } = await timeInterleaved(cases, {
        warmup: 1,
        iters: spec.iters,
        minIters: Math.min(2, spec.iters),
        inner: spec.inner,
        budgetMs: spec.budgetMs,
      });
      names.forEach((name, j) => {
        result.results[name] = stats[j];
        if (errors[j]) result.notes[name] = `failed: ${errors[j]}`;
      });
      if (spec.check && names[0] === "ours" && names[1] === "tfjs" && !errors.some((e) => e)) {
        try {
          result.notes.check = await spec.check(cases[0], cases[1]);
        } catch (e) {
          result.notes.check = `check failed: ${errorNote(e)}`;
        }
      }
      for (const c of cases) {
        try {
          c.dispose();
        } catch { /* already reported */ }
      }
    }
    results.push(result);
    await writeJson(true); // a run stopped by a time limit keeps the cases done so far
    const secs = ((performance.now() - t0) / 1000).toFixed(1);
    console.error(
      `${spec.id}: ours ${fmtStats(result.results.ours)}, tfjs ${fmtStats(result.results.tfjs)}, jax-js ${
        fmtStats(result.results.jax)
      } ms` +
        `  [${secs} s]${
          Object.values(result.notes).length ? "  " + Object.values(result.notes).join("; ") : ""
        }`,
    );
  }

  const batchArg = values["resnet-batches"] ??
    resnetBatches({ quick: values.quick, hardware, list: undefined }).join(",");
  const peerArgs = [
    ...(values.quick ? ["--quick"] : []),
    ...(values.cases ? ["--cases", values.cases] : []),
  ];
  if (values.torch) {
    try {
      const torch = await runTorch("/usr/bin/python3", "torch_cpu.py", peerArgs);
      torchInfo = torch.info;
      mergeTorch(results, torch, TORCH_CPU);
    } catch (e) {
      torchInfo = { error: errorNote(e) };
    }
  }
  const cudaColumns: TorchColumn[] = [];
  if (values["torch-cuda"] || values["torch-jsonl"]) {
    try {
      const torch = values["torch-jsonl"]
        ? parseTorchLines(await Deno.readTextFile(values["torch-jsonl"]))
        : await runTorch(values.python ?? "python3", "torch_cuda.py", [
          ...peerArgs,
          "--inner",
          String(inner),
          "--resnet-batches",
          batchArg,
          ...(values.iters ? ["--iters", values.iters] : []),
        ]);
      torchCudaInfo = { ...torch.info, modes: torch.modes };
      if (torch.results.has("")) {
        mergeTorch(results, torch, TORCH_CPU); // a torch_cpu.py file given to --torch-jsonl
        torchInfo = torch.info;
      }
      for (const column of TORCH_CUDA) {
        if (!torch.results.has(column.mode)) continue;
        mergeTorch(results, torch, column);
        cudaColumns.push(column);
      }
    } catch (e) {
      torchCudaInfo = { error: errorNote(e) };
    }
  }

  const torchColumns = [...(values.torch || torchInfo ? [TORCH_CPU] : []), ...cudaColumns];
  const headers = ["case", "ours ms", "GFLOP/s", "TF.js WebGPU ms", "GFLOP/s", "ours/TF.js"];
  const jaxColumn = results.some((r) => "jax" in r.results);
  if (jaxColumn) headers.push("jax-js WebGPU ms", "GFLOP/s", "ours/jax-js");
  for (const c of torchColumns) headers.push(`${c.title} ms`, "GFLOP/s", `ours/${c.short}`);
  const rows = results.map((r) => {
    const o = r.results.ours;
    const p = r.results.tfjs;
    const row = [
      r.label,
      fmtStats(o),
      fmtGflops(r.flop, o),
      fmtStats(p),
      fmtGflops(r.flop, p),
      fmtRatio(o, p),
    ];
    if (jaxColumn) {
      row.push(fmtStats(r.results.jax), fmtGflops(r.flop, r.results.jax), fmtRatio(o, r.results.jax));
    }
    for (const c of torchColumns) {
      const t = r.results[c.key];
      row.push(fmtStats(t), fmtGflops(r.flop, t), fmtRatio(o, t));
    }
    return row;
  });
  const align = headers.map((_, i) => (i === 0 ? "l" : "r") as "l" | "r");
  const lines = [
    `Date: ${env.date}. Deno ${env.deno} (V8 ${env.v8}), ${env.os}/${env.arch}, ${env.cpus ?? "?"} CPUs.`,
    `Our engine: adapter ${g.report.name} (vendor ${g.report.vendor || "?"}, ${
      g.report.isFallback ? "software/fallback" : "hardware"
    }).`,
    `TF.js: ${tfjsInfo || tfjsError || "not run"}.`,
    `jax-js: ${jaxInfo || jaxError || "not run"} (matmul, Gram and convolution cases only).`,
  ];
  if (torchInfo) lines.push(`PyTorch: ${JSON.stringify(torchInfo)}.`);
  if (torchCudaInfo) lines.push(`PyTorch CUDA: ${JSON.stringify(torchCudaInfo)}.`);
  lines.push(
    `Median (min–max) ms per iteration; each sample = k iterations + one scalar readback, divided by k ` +
      `(k = ${inner}${inner > 1 ? ", ResNet steps k·8/batch" : ""}${
        torchCudaInfo ? "; PyTorch CUDA: CUDA events around k calls, no readback" : ""
      }).`,
    "Ratios are time ours/peer: below 1 our engine is faster. GFLOP/s from the stated FLOP counts (multiply-add = 2).",
    "",
    markdownTable(headers, rows, align),
  );
  const notes = results.flatMap((r) =>
    Object.entries(r.notes).filter(([, v]) => v).map(([k, v]) => `- ${r.id} (${k}): ${v}`)
  );
  if (notes.length) lines.push("", "Notes:", ...notes);
  const speedups = peerSpeedupLines(results);
  if (speedups.length) lines.push("", "Software-adapter targets (issue 12), this run:", ...speedups);
  const targets = resnetTargetLines(results);
  if (targets.length) lines.push("", "Target (ResNet-18 step ≥ 50% of PyTorch fp32):", ...targets);
  console.log(lines.join("\n"));

  await writeJson(false);
  if (values.json) console.error(`wrote ${values.json}`);
}

if (import.meta.main) {
  await main();
  // TF.js and our engine each hold a GPUDevice; exit explicitly so no pending work keeps Deno alive.
  Deno.exit(0);
}
