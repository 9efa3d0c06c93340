/**
 * `deno task tune`: pre-tunes the GEMMs of a ResNet-18 training step (CIFAR, 32×32) at a batch size on this
 * adapter and prints, per GEMM, the heuristic's kernel and time against the tuned one's. The winners go to
 * the tuning cache (`engine/tune/store.ts`: `$SUPCON_TUNING_CACHE`, else the user's cache folder), which
 * every later run reads in the default tuning mode ("cached"). The work is `bench/tune_cases.ts`'s, which
 * `bench/browser.ts --only tune` runs in a Chromium page too.
 *
 * Usage: deno task tune [--batch 8] [--width 1] [--fresh] [--cap-ms 3000] [--limit N] [--by-layer]
 *   [--verify N] [--wall] [--json out.json]
 *   --fresh     measure every GEMM again, even those the cache has
 *   --cap-ms    time spent on one GEMM's candidates at most (the heuristic is always timed)
 *   --limit     measure only the first N GEMM shapes (a quick rehearsal)
 *   --by-layer  also the table per ResNet-18 layer and pass (conv forward, grad input, grad weight): the
 *               heuristic's and the tuned choice's time per step (the tuner's timings × dispatches per step)
 *   --verify N  re-time the heuristic against the choice of every GEMM whose choice changed, interleaved,
 *               N samples each, on the wall clock (an independent check of the tuner's timings)
 *   --wall      the tuner times with the wall clock even where the adapter has timestamp queries
 *
 * @module
 */
import { initDevice } from "../engine/gpu.ts";
import { adapterLine, arg } from "./harness.ts";
import { byLayerTable, fmtMs, siteTable, tuneResNetStep } from "./tune_cases.ts";

const USAGE = "deno task tune [--batch 8] [--width 1] [--fresh] [--cap-ms 3000] [--limit N] [--by-layer] " +
  "[--verify N] [--wall] [--json out.json]";
if (Deno.args.includes("--help")) {
  console.log(USAGE);
  Deno.exit(0);
}
const BATCH = Number(arg("batch", "8"));
const WIDTH = Number(arg("width", "1"));
const CAP_MS = Number(arg("cap-ms", "3000"));
const JSON_OUT = arg("json", "");
const LIMIT = Number(arg("limit", "Infinity"));
const VERIFY = Number(arg("verify", "0"));
const BY_LAYER = Deno.args.includes("--by-layer");
for (const [name, v] of [["batch", BATCH], ["width", WIDTH], ["cap-ms", CAP_MS], ["limit", LIMIT]] as const) {
  if (!(v > 0)) {
    console.error(`tune: --${name} must be a positive number`);
    Deno.exit(2);
  }
}
if (!(VERIFY >= 0 && Number.isInteger(VERIFY))) {
  console.error("tune: --verify must be a whole number of samples");
  Deno.exit(2);
}

const wall0 = performance.now();
const g = await initDevice({ tuning: "measure" });
console.log(`adapter: ${await adapterLine()}; kernels: ${g.kernels}; cache: ${g.tuner.store.location}`);
if (g.tuner.store.note) console.log(`note: the cache is kept in memory only: ${g.tuner.store.note}`);

const run = await tuneResNetStep({
  batch: BATCH,
  width: WIDTH,
  fresh: Deno.args.includes("--fresh"),
  capMs: CAP_MS,
  limit: LIMIT,
  timestamps: !Deno.args.includes("--wall"),
  verifyReps: VERIFY,
  log: (line) => console.log(line),
});
if (run.unmeasured) console.log(`--limit ${LIMIT}: ${run.unmeasured} shapes left unmeasured`);

console.log();
console.log(siteTable(run));
if (BY_LAYER) {
  console.log();
  console.log(byLayerTable(run));
}
// Per step: each GEMM's time × its dispatches per step, on the heuristic's path and on the tuned one.
const gemms = run.sites.filter((s) => s.kind === "gemm");
const heuristicMs = gemms.reduce((s, r) => s + r.heuristicCount * (r.heuristicMs ?? 0), 0);
const tunedMs = gemms.reduce((s, r) => s + r.tunedCount * (r.tunedMs ?? 0), 0);
const totalSeconds = (performance.now() - wall0) / 1000;
console.log(
  `\nGEMM time per step: heuristic ${fmtMs(heuristicMs)} ms, tuned ${fmtMs(tunedMs)} ms ` +
    `(${(heuristicMs / Math.max(tunedMs, 1e-9)).toFixed(2)}×); measuring took ${
      run.measureSeconds.toFixed(1)
    } s for ${run.measured} sites (${run.remeasured} of them a second time) in ${run.rounds} rounds (timing: ${run.method}, cap ${run.capMs} ms per GEMM)` +
    (VERIFY ? `, re-timing ${run.verifySeconds.toFixed(1)} s` : "") +
    `; ${totalSeconds.toFixed(1)} s since start (device, recording, measuring)`,
);
if (run.warning) console.log(`warning: ${run.warning}`);
if (JSON_OUT) {
  await Deno.writeTextFile(
    JSON_OUT,
    JSON.stringify(
      {
        date: new Date().toISOString(),
        adapter: await adapterLine(),
        seconds: run.measureSeconds,
        totalSeconds,
        heuristicMs,
        tunedMs,
        ...run,
      },
      null,
      1,
    ),
  );
}
