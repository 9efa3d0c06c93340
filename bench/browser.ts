/**
 * Our engine in two WebGPU implementations on this machine, in one run: Deno's (wgpu; on CI machines Mesa's
 * llvmpipe) and Chromium's (Dawn on SwiftShader, headless, the adapter a browser without a GPU gets). The
 * same cases (`bench/browser_cases.ts`: the 1024³ matmul as `bench/gemm_bench.ts` times it, one ResNet-18
 * training step at batch 8 as `bench/profile_step.ts` does) run first in this process, then in a page.
 *
 * ```sh
 * npx -y deno@2.9.6 run --unstable-bundle --allow-read --allow-write --allow-env --allow-sys \
 *   --allow-net=127.0.0.1 --allow-run=/usr/bin/chromium bench/browser.ts \
 *   [--kernels auto|software|gpu] [--samples 5] [--calls 3] [--batch 8] [--steps 3]
 *   [--only matmul,step,tune,compare] [--width 1] [--cap-ms 3000] [--verify 3] [--pairs 5] [--records 20]
 *   [--no-deno] [--json FILE] [--chromium PATH]
 * ```
 *
 * `--only` picks cases (default `matmul,step`). `tune`: the autotuner on a ResNet-18 step at `--batch` and
 * `--width` (`bench/tune_cases.ts`, as `deno task tune --fresh --by-layer --verify N`), on a memory cache on
 * both sides; prints each side's per-site and by-layer tables. `compare` (after `tune`, which it implies):
 * the step with the tuner's mode "off" and "cached" alternated, `--pairs` each, and the host time to record
 * a step in both modes, `--records` each. `--no-deno`: the Chromium side only (e.g. when `deno task tune` and
 * `bench/profile_step.ts --tuning-compare` give the llvmpipe numbers).
 *
 * Prints the adapters, one markdown table (median (min–max) ms, GFLOP/s, Chromium/Deno time ratio) and the
 * warm-up times (pipeline compilation: SwiftShader compiles each pipeline in about a second).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { initDevice } from "../engine/gpu.ts";
import { memoryStore } from "../engine/tune/store.ts";
import { benchMatmul1024, benchResNetStep, type CaseTiming } from "./browser_cases.ts";
import type { BenchPage } from "./browser_page.ts";
import {
  byLayerTable,
  compareLine,
  compareTuningSteps,
  recordingLine,
  type RecordingOverhead,
  recordingOverhead,
  siteTable,
  tuneResNetStep,
  type TuneRun,
  type TuningCompare,
} from "./tune_cases.ts";
import {
  bundleForBrowser,
  chromiumMissing,
  chromiumPath,
  launchChromium,
  servePage,
  within,
} from "../tests/dawn/chromium.ts";

const args = parseArgs({
  args: Deno.args,
  options: {
    kernels: { type: "string", default: "auto" },
    samples: { type: "string", default: "5" },
    calls: { type: "string", default: "3" },
    batch: { type: "string", default: "8" },
    steps: { type: "string", default: "3" },
    only: { type: "string" },
    width: { type: "string", default: "1" },
    "cap-ms": { type: "string", default: "3000" },
    verify: { type: "string", default: "3" },
    pairs: { type: "string", default: "5" },
    records: { type: "string", default: "20" },
    "no-deno": { type: "boolean", default: false },
    json: { type: "string" },
    chromium: { type: "string" },
    help: { type: "boolean", short: "h" },
  },
});
if (args.values.help) {
  console.log(
    "usage: bench/browser.ts [--kernels auto|software|gpu] [--samples 5] [--calls 3] [--batch 8] [--steps 3] " +
      "[--only matmul,step,tune,compare] [--width 1] [--cap-ms 3000] [--verify 3] [--pairs 5] [--records 20] " +
      "[--no-deno] [--json FILE] [--chromium PATH]",
  );
  Deno.exit(0);
}
const kernels = args.values.kernels as "auto" | "software" | "gpu";
const samples = Number(args.values.samples);
const calls = Number(args.values.calls);
const batch = Number(args.values.batch);
const steps = Number(args.values.steps);
const only = (args.values.only ?? "matmul,step").split(",");
type Case = "matmul" | "step" | "tune" | "compare";
const wanted = (c: Case) => only.includes(c) || (c === "tune" && only.includes("compare"));
const width = Number(args.values.width);
const tuneOptions = {
  batch,
  width,
  capMs: Number(args.values["cap-ms"]),
  verifyReps: Number(args.values.verify),
};
const compareOptions = {
  batch,
  width,
  pairs: Number(args.values.pairs),
  records: Number(args.values.records),
};

interface Side {
  implementation: string;
  adapter: string;
  kernels: string;
  results: CaseTiming[];
  tune?: TuneRun;
  compare?: { compare: TuningCompare; recording: RecordingOverhead };
}

function printTuning(side: Side) {
  if (side.tune) {
    const t = side.tune;
    console.log(`\n${side.implementation}, ${side.adapter}: tuning, per site`);
    console.log(siteTable(t));
    console.log(`\n${side.implementation}, ${side.adapter}: tuning, by layer`);
    console.log(byLayerTable(t));
    console.log(
      `measuring: ${
        t.measureSeconds.toFixed(1)
      } s for ${t.measured} sites (${t.remeasured} a second time) in ` +
        `${t.rounds} rounds (timing: ${t.method}, cap ${t.capMs} ms); re-timing ${
          t.verifySeconds.toFixed(1)
        } s`,
    );
  }
  if (side.compare) {
    console.log(`${side.implementation}: ${compareLine(side.compare.compare)}`);
    console.log(`${side.implementation}: ${recordingLine(side.compare.recording)}`);
  }
}

// --- Deno ---------------------------------------------------------------------------------------------------
const loadBefore = Deno.loadavg();
const g = await initDevice({ kernels });
const deno: Side = {
  implementation: `Deno ${Deno.version.deno} (wgpu)`,
  adapter: `${g.report.name}${g.report.isFallback ? " (fallback)" : ""}`,
  kernels: g.kernels,
  results: [],
};
console.log(`Deno: ${deno.adapter}, kernels ${deno.kernels}`);
const denoSide = !args.values["no-deno"];
if (!denoSide) console.log("--no-deno: the Chromium side only");
if (denoSide && wanted("matmul")) deno.results.push(await benchMatmul1024(samples, calls));
if (denoSide && wanted("step")) deno.results.push(await benchResNetStep(batch, steps));
for (const r of deno.results) console.log(`  ${r.case}: ${r.medianMs.toFixed(1)} ms`);
if (denoSide && wanted("tune")) {
  deno.tune = await tuneResNetStep({
    ...tuneOptions,
    fresh: true,
    store: memoryStore(),
    log: (l) => console.log(`  ${l}`),
  });
}
if (denoSide && wanted("compare")) {
  const compare = await compareTuningSteps(
    batch,
    width,
    compareOptions.pairs,
    2,
    (l) => console.log(`  ${l}`),
  );
  const recording = await recordingOverhead(batch, width, compareOptions.records);
  deno.compare = { compare, recording };
}
printTuning(deno);

// --- Chromium -----------------------------------------------------------------------------------------------
const path = chromiumPath(args.values.chromium);
const missing = await chromiumMissing(path);
if (missing) {
  console.error(missing);
  Deno.exit(1);
}
const pageJs = await bundleForBrowser(new URL("./browser_page.ts", import.meta.url));
const server = servePage(
  `<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><script type="module" src="/page.js"></script>`,
  { "/page.js": pageJs },
);
const browser = await launchChromium(path);
let chromium: Side;
try {
  const page = await browser.newPage();
  page.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning") console.log(`  console.${m.type()}: ${m.text()}`);
  });
  page.on("pageerror", (e) => console.log(`  uncaught: ${e.message}`));
  await page.goto(`${server.origin}/`);
  await within(page.waitForFunction(() => "bench" in globalThis), 60_000, "the page to load");
  const info = await within(
    page.evaluate((k) => (globalThis as unknown as { bench: BenchPage }).bench.init(k), kernels),
    60_000,
    "initDevice",
  );
  chromium = { implementation: `Chromium (Dawn)`, adapter: info.adapter, kernels: info.kernels, results: [] };
  console.log(`Chromium: ${info.adapter}, kernels ${info.kernels}; ${info.userAgent}`);
  if (wanted("matmul")) {
    chromium.results.push(
      await within(
        page.evaluate(
          ([s, c]) => (globalThis as unknown as { bench: BenchPage }).bench.matmul(s, c),
          [samples, calls] as const,
        ),
        30 * 60_000,
        "matmul",
      ),
    );
  }
  if (wanted("step")) {
    chromium.results.push(
      await within(
        page.evaluate(
          ([b, s]) => (globalThis as unknown as { bench: BenchPage }).bench.step(b, s),
          [batch, steps] as const,
        ),
        30 * 60_000,
        "ResNet-18 step",
      ),
    );
  }
  for (const r of chromium.results) console.log(`  ${r.case}: ${r.medianMs.toFixed(1)} ms`);
  // The page's progress lines, printed while a long case runs.
  const withLog = async <T>(p: Promise<T>): Promise<T> => {
    const take = async () => {
      const ls = await page.evaluate(() => (globalThis as unknown as { bench: BenchPage }).bench.takeLog());
      for (const l of ls) console.log(`  ${l}`);
    };
    let done = false;
    const poll = (async () => {
      while (!done) {
        await new Promise((r) => setTimeout(r, 5000));
        await take().catch(() => {});
      }
    })();
    try {
      return await p;
    } finally {
      done = true;
      await poll;
      await take().catch(() => {});
    }
  };
  if (wanted("tune")) {
    chromium.tune = await withLog(within(
      page.evaluate((o) => (globalThis as unknown as { bench: BenchPage }).bench.tune(o), tuneOptions),
      60 * 60_000,
      "tuning",
    ));
  }
  if (wanted("compare")) {
    chromium.compare = await withLog(within(
      page.evaluate((o) => (globalThis as unknown as { bench: BenchPage }).bench.compare(o), compareOptions),
      60 * 60_000,
      "tuning compare",
    ));
  }
} finally {
  await within(browser.close(), 30_000, "closing Chromium").catch(() => {});
  await server.shutdown();
}

// --- tables -------------------------------------------------------------------------------------------------
printTuning(chromium);
if (chromium.tune && deno.tune) {
  const total = (t: TuneRun) => {
    const g = t.sites.filter((s) => s.kind === "gemm");
    return [
      g.reduce((a, s) => a + s.heuristicCount * (s.heuristicMs ?? 0), 0),
      g.reduce((a, s) => a + s.tunedCount * (s.tunedMs ?? 0), 0),
    ];
  };
  const [dh, dt] = total(deno.tune);
  const [ch, ct] = total(chromium.tune);
  console.log(
    `\nGEMM time per step, heuristic → tuned: Deno ${dh.toFixed(1)} → ${dt.toFixed(1)} ms (${
      (dh / dt).toFixed(2)
    }×), ` +
      `Chromium ${ch.toFixed(1)} → ${ct.toFixed(1)} ms (${(ch / ct).toFixed(2)}×); tuning took Deno ${
        deno.tune.measureSeconds.toFixed(1)
      } s, Chromium ${chromium.tune.measureSeconds.toFixed(1)} s`,
  );
}
const fmt = (x: number) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
const cell = (r: CaseTiming) => `${fmt(r.medianMs)} (${fmt(r.minMs)}–${fmt(r.maxMs)})`;
if (deno.results.length) {
  console.log(
    `\n| case | ${deno.implementation}, ${deno.adapter} ms | GFLOP/s | ${chromium.implementation}, ` +
      `${chromium.adapter} ms | GFLOP/s | Chromium/Deno |`,
  );
  console.log("| --- | ---: | ---: | ---: | ---: | ---: |");
  for (const [i, d] of deno.results.entries()) {
    const c = chromium.results[i];
    console.log(
      `| ${d.case} | ${cell(d)} | ${d.gflops.toFixed(2)} | ${cell(c)} | ${c.gflops.toFixed(2)} | ` +
        `${(c.medianMs / d.medianMs).toFixed(2)}× |`,
    );
  }
  console.log(
    `\nwarm-up (compilation and first runs): ` +
      deno.results.map((d, i) =>
        `${d.case}: Deno ${(d.warmupMs / 1000).toFixed(1)} s, Chromium ${
          (chromium.results[i].warmupMs / 1000).toFixed(1)
        } s`
      ).join("; "),
  );
}
const loadAfter = Deno.loadavg();
console.log(
  `load average (1, 5, 15 min) before: ${loadBefore.join(", ")}; after: ${loadAfter.join(", ")} ` +
    `(${navigator.hardwareConcurrency} CPUs)`,
);
if (args.values.json) {
  await Deno.writeTextFile(
    args.values.json,
    JSON.stringify({ date: new Date().toISOString(), loadBefore, loadAfter, deno, chromium }, null, 2) + "\n",
  );
}
