/**
 * `deno task tune`: pre-tunes the GEMMs of a ResNet-18 training step (CIFAR, 32×32) at a batch size on this
 * adapter and prints, per GEMM, the heuristic's kernel and time against the tuned one's. The winners go to
 * the tuning cache (`engine/tune/store.ts`: `$SUPCON_TUNING_CACHE`, else the user's cache folder), which
 * every later run reads in the default tuning mode ("cached").
 *
 * Usage: deno task tune [--batch 8] [--width 1] [--fresh] [--cap-ms 3000] [--limit N] [--json out.json]
 *   --fresh   measure every GEMM again, even those the cache has
 *   --cap-ms  time spent on one GEMM's candidates at most (the heuristic is always timed)
 *   --limit   measure only the first N GEMM shapes (a quick rehearsal)
 *
 * @module
 */
import { initDevice } from "../engine/gpu.ts";
import "../engine/autograd.ts";
import type { TuneDecision } from "../engine/tune/tuner.ts";
import { adapterLine, arg, markdownTable } from "./harness.ts";
import { resnetTrainStep } from "./resnet_step.ts";

if (Deno.args.includes("--help")) {
  console.log(
    "deno task tune [--batch 8] [--width 1] [--fresh] [--cap-ms 3000] [--limit N] [--json out.json]",
  );
  Deno.exit(0);
}
const BATCH = Number(arg("batch", "8"));
const WIDTH = Number(arg("width", "1"));
const CAP_MS = Number(arg("cap-ms", "3000"));
const JSON_OUT = arg("json", "");
const LIMIT = Number(arg("limit", "Infinity"));
for (const [name, v] of [["batch", BATCH], ["width", WIDTH], ["cap-ms", CAP_MS], ["limit", LIMIT]] as const) {
  if (!(v > 0)) {
    console.error(`tune: --${name} must be a positive number`);
    Deno.exit(2);
  }
}

const g = await initDevice({ tuning: "measure" });
g.tuner.remeasure = Deno.args.includes("--fresh");
g.tuner.capMs = CAP_MS;
console.log(`adapter: ${await adapterLine()}; kernels: ${g.kernels}; cache: ${g.tuner.store.location}`);
if (g.tuner.store.note) console.log(`note: the cache is kept in memory only: ${g.tuner.store.note}`);

// Record one step without running it (dryRun): that queues every GEMM shape the step uses.
const model = resnetTrainStep(BATCH, WIDTH);
g.dryRun = true;
try {
  model.step();
  g.flush();
} finally {
  g.dryRun = false;
}
await g.sync();
const cached = g.tuner.decisions().filter((d) => d.source === "cached");
const n = g.tuner.pendingCount;
console.log(`ResNet-18 ×${WIDTH} batch ${BATCH}: ${n} GEMM shapes to measure, ${cached.length} cached`);
const t0 = performance.now();
let i = 0;
const measured = await g.tuner.measurePending((d) => {
  const ms = d.entry?.ms ?? {};
  console.log(`[${++i}/${n}] ${d.label}: ${fmt(ms[d.heuristic])} → ${d.choice} ${fmt(ms[d.choice])}`);
}, LIMIT);
if (g.tuner.pendingCount) console.log(`--limit ${LIMIT}: ${g.tuner.pendingCount} shapes left unmeasured`);
const seconds = (performance.now() - t0) / 1000;
model.dispose();

function fmt(ms: number | null | undefined): string {
  return ms === null || ms === undefined ? "—" : `${ms.toFixed(3)} ms`;
}

const rows = [...cached, ...measured].map((d: TuneDecision) => {
  const ms = d.entry?.ms ?? {};
  const h = ms[d.heuristic];
  const t = ms[d.choice];
  return [
    d.label,
    d.heuristic,
    fmt(h),
    d.choice === d.heuristic ? "(same)" : d.choice,
    fmt(t),
    h && t ? `${(h / t).toFixed(2)}×` : "—",
    d.source,
  ];
});
console.log();
console.log(markdownTable(["GEMM", "heuristic", "ms", "tuned", "ms", "speed-up", "source"], rows));
const sum = (pick: (d: TuneDecision) => number | null | undefined) =>
  [...cached, ...measured].reduce((s, d) => s + (pick(d) ?? 0), 0);
const heuristicMs = sum((d) => d.entry?.ms[d.heuristic]);
const tunedMs = sum((d) => d.entry?.ms[d.choice]);
console.log(
  `\nGEMM time per step: heuristic ${heuristicMs.toFixed(1)} ms, tuned ${tunedMs.toFixed(1)} ms ` +
    `(${(heuristicMs / Math.max(tunedMs, 1e-9)).toFixed(2)}×); measuring took ${seconds.toFixed(1)} s ` +
    `(timing: ${measured[0]?.entry?.method ?? cached[0]?.entry?.method ?? "—"})`,
);
if (g.tuner.warning) console.log(`warning: ${g.tuner.warning}`);
if (JSON_OUT) {
  await Deno.writeTextFile(
    JSON_OUT,
    JSON.stringify(
      { batch: BATCH, width: WIDTH, seconds, heuristicMs, tunedMs, decisions: [...cached, ...measured] },
      null,
      1,
    ),
  );
}
