/**
 * Profile of one ResNet-18 (CIFAR, 32×32) training step: forward, cross-entropy, backward and an SGD
 * update (momentum 0.9, weight decay 5e-4) recorded as one submit, as the trainer does.
 *
 * For each batch size: warm-up steps (pipeline compilation), then `--steps` unprofiled steps each
 * followed by `await gpu().sync()` (median wall time and process CPU time per core), then one step
 * with `gpu().profile = true` (per-dispatch GPU timestamps), printed by kernel family (conv forward /
 * grad input / grad weight per layer shape, BN forward / backward, ReLU / add, pooling, loss, SGD,
 * copies) against the unprofiled step.
 *
 * Usage: deno run --allow-read --allow-write --allow-env bench/profile_step.ts [--batch 8,32]
 *   [--width 1] [--steps 3] [--top 0] [--json out.json]
 *
 * `--tuning-compare [--pairs 5] [--records 20] [--cap-ms 3000]` instead: per batch size, tunes the step's GEMMs
 * (mode "measure": what the cache, `$SUPCON_TUNING_CACHE`, lacks; `bench/tune_cases.ts`), then times the
 * step with the tuner's mode "off" (the heuristic) and "cached" (the tuned choices) alternated, `--pairs`
 * steps each (medians), and the host time to record a step (dryRun) in both modes, `--records` each.
 *
 * @module
 */
import process from "node:process";
import { gpu, initDevice } from "../engine/gpu.ts";
import "../engine/autograd.ts";
import { arg } from "./harness.ts";
import { resnetTrainStep } from "./resnet_step.ts";
import {
  compareLine,
  compareTuningSteps,
  recordingLine,
  recordingOverhead,
  tuneResNetStep,
} from "./tune_cases.ts";

if (Deno.args.includes("--help")) {
  console.log(
    "deno run --allow-read --allow-write --allow-env bench/profile_step.ts [--batch 8,32] [--width 1] " +
      "[--steps 3] [--top 0] [--json out.json] [--tuning-compare [--pairs 5] [--records 20] [--cap-ms 3000]]",
  );
  Deno.exit(0);
}

const BATCHES = arg("batch", "8,32").split(",").map(Number);
const WIDTH = Number(arg("width", "1"));
const STEPS = Number(arg("steps", "3"));
const TOP = Number(arg("top", "0"));
const JSON_OUT = arg("json", "");
const CORES = navigator.hardwareConcurrency;

/** Kernel family of a dispatch name (conv names carry their layer shape). */
export function family(name: string): string {
  if (name.startsWith("conv2d.")) {
    const m = /^conv2d\.(\w+)(?:\.\w+)?\s*(.*)$/.exec(name);
    const pass = m?.[1] ?? name;
    const kind = pass === "forward"
      ? "fwd"
      : pass === "gradInput" || pass === "phaseWeights"
      ? "dx"
      : pass === "gradWeight"
      ? "dw"
      : pass;
    return `conv ${kind} ${m?.[2] ?? ""}`.trim();
  }
  if (name.startsWith("batchNorm")) return name.includes("backward") ? "BN bwd" : "BN fwd";
  if (/^(relu|add|addRelu)/.test(name)) return name.includes("backward") ? "relu/add bwd" : "relu/add fwd";
  if (/pool|mean|sum/i.test(name)) return "pool/reduce";
  if (/crossEntropy|softmax|loss/i.test(name)) return "loss";
  if (/sgd/i.test(name)) return "sgd";
  if (/linear|matmul/i.test(name)) return "linear";
  if (/fill|copy|clear|add(Same|Into)/.test(name)) return "copies/fills/grad-accum";
  return name;
}

interface BatchResult {
  batch: number;
  width: number;
  stepMs: number;
  stepCpuMsPerCore: number;
  profiledDispatchMs: number;
  dispatches: number;
  families: { family: string; ms: number; count: number }[];
}

async function profileBatch(batch: number): Promise<BatchResult> {
  const { step, dispose } = resnetTrainStep(batch, WIDTH);
  // The first step compiles the step's pipelines (the first batch size of the process pays for most).
  const pipelines0 = gpu().counters.pipelines;
  const warm: number[] = [];
  for (let i = 0; i < 2; i++) {
    const t0 = performance.now();
    step();
    await gpu().sync();
    warm.push(performance.now() - t0);
  }
  const compiled = gpu().counters.pipelines - pipelines0;
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let i = 0; i < STEPS; i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    step();
    await gpu().sync();
    wall.push(performance.now() - t0);
    const used = process.cpuUsage(c0);
    cpu.push((used.user + used.system) / 1000 / CORES);
  }
  const median = (a: number[]) => [...a].sort((p, q) => p - q)[Math.floor(a.length / 2)];
  const g = gpu();
  await g.profileReport(); // drop anything recorded before
  g.profile = true;
  const d0 = g.counters.dispatches;
  step();
  const report = await g.profileReport();
  g.profile = false;
  const dispatches = g.counters.dispatches - d0;
  const fam = new Map<string, { family: string; ms: number; count: number }>();
  for (const k of report.kernels) {
    const f = family(k.name);
    const e = fam.get(f) ?? { family: f, ms: 0, count: 0 };
    e.ms += k.ms;
    e.count += k.count;
    fam.set(f, e);
  }
  const families = [...fam.values()].sort((a, b) => b.ms - a.ms);
  const stepMs = median(wall);
  console.log(
    `\nResNet-18 width ${WIDTH}, batch ${batch}: step ${stepMs.toFixed(1)} ms wall (median of ${STEPS}), ` +
      `${median(cpu).toFixed(1)} ms CPU per core; profiled dispatch sum ${report.dispatchMs.toFixed(1)} ms ` +
      `over ${dispatches} dispatches (${report.timestamps ? "GPU timestamps" : "host timing"}); ` +
      `warm-up steps ${warm.map((w) => w.toFixed(0)).join(", ")} ms, ${compiled} pipelines compiled`,
  );
  for (const f of families) {
    const pct = (100 * f.ms / report.dispatchMs).toFixed(1);
    console.log(
      `  ${f.family.padEnd(40)} ${f.ms.toFixed(2).padStart(9)} ms ${pct.padStart(5)}%  ×${f.count}`,
    );
  }
  if (TOP > 0) {
    console.log(`  top ${TOP} kernels:`);
    for (const k of report.kernels.slice(0, TOP)) {
      console.log(`    ${k.name.padEnd(50)} ${k.ms.toFixed(2).padStart(9)} ms ×${k.count}`);
    }
  }
  dispose();
  await g.sync();
  return {
    batch,
    width: WIDTH,
    stepMs,
    stepCpuMsPerCore: median(cpu),
    profiledDispatchMs: report.dispatchMs,
    dispatches,
    families,
  };
}

if (Deno.args.includes("--tuning-compare")) {
  const pairs = Number(arg("pairs", "5"));
  const records = Number(arg("records", "20"));
  const g = await initDevice({ tuning: "measure" });
  console.log(
    `adapter: ${g.report.name}; cores ${CORES}; kernels ${g.kernels}; cache ${g.tuner.store.location}`,
  );
  const out = [];
  for (const batch of BATCHES) {
    const tuned = await tuneResNetStep({
      batch,
      width: WIDTH,
      capMs: Number(arg("cap-ms", "3000")),
      log: (l) => console.log(l),
    });
    console.log(
      `tuning: ${tuned.measured} sites measured in ${
        tuned.measureSeconds.toFixed(1)
      } s, ${tuned.cached} cached`,
    );
    const compare = await compareTuningSteps(batch, WIDTH, pairs, 2, (l) => console.log(l));
    console.log(compareLine(compare));
    const recording = await recordingOverhead(batch, WIDTH, records);
    console.log(recordingLine(recording));
    out.push({ batch, width: WIDTH, compare, recording });
  }
  if (JSON_OUT) await Deno.writeTextFile(JSON_OUT, JSON.stringify(out, null, 2));
  Deno.exit(0);
}

await initDevice();
console.log(`adapter: ${gpu().report.name}; cores ${CORES}`);
const results: BatchResult[] = [];
for (const b of BATCHES) results.push(await profileBatch(b));
if (JSON_OUT) await Deno.writeTextFile(JSON_OUT, JSON.stringify(results, null, 2));
