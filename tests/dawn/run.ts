/**
 * The portable test suite in a second WebGPU implementation: Chromium's Dawn (Tint compiles our WGSL) on
 * SwiftShader, driven headless by playwright-core. Deno's own WebGPU is wgpu (Naga); the two shader
 * compilers and drivers disagree on what they accept, so this catches kernels that only one of them takes.
 *
 * ```sh
 * npx -y deno@2.9.6 run --unstable-bundle --allow-read --allow-write=/tmp --allow-env --allow-sys \
 *   --allow-net=127.0.0.1 --allow-run=/usr/bin/chromium tests/dawn/run.ts \
 *   [--kernels auto|software|gpu|both] [--filter STR] [--json FILE] [--timeout SECONDS] [--chromium PATH]
 *   [--fresh] [--verbose]
 * ```
 *
 * `--unstable-bundle` enables `Deno.bundle`; `--json FILE` outside /tmp needs `--allow-write` for it, and
 * `--chromium PATH` needs `--allow-run` for that path.
 *
 * 1. bundles `tests/dawn/page.ts` (it imports the portable test files: see `tests/harness.ts`) and
 *    `tests/dawn/assert_strict.ts` (Node's assertion API for the page) for the browser with `Deno.bundle`;
 * 2. serves them on 127.0.0.1 (a page on `about:blank` has no `navigator.gpu`);
 * 3. launches Chromium headless with WebGPU on SwiftShader (`--chromium PATH`, else `$CHROMIUM`, else
 *    /usr/bin/chromium), loads the page, prints the adapter Chromium reports, and per kernel strategy runs
 *    every case in its own `page.evaluate` with a timeout (`--timeout`, 600 s). A failure does not stop
 *    the rest; a case that times out, crashes the page or loses the device is failed and the page
 *    reloaded for the next one. Console errors and warnings are printed under the case during which they
 *    appeared (`--verbose` prints all console output); an uncaught page error fails that case.
 *
 * Output: one line per case (`ok` / `FAILED` / `skipped`, strategy, name, seconds, error), a count per
 * strategy, and last `dawn: N passed, N failed`; the exit status is non-zero on any failure, and when
 * Chromium or WebGPU is missing ("chromium not found at …: apt-get install chromium").
 *
 * `--kernels`: `auto` lets the engine choose by adapter (SwiftShader is a fallback adapter, so the
 * `software` kernels); `gpu` forces the hardware-GPU kernels (workgroup-memory GEMM tiles and the
 * convolution routes that go with them) on SwiftShader; `both` (the default) runs the suite under auto, then
 * under gpu.
 *
 * Run time: SwiftShader compiles each pipeline in about a second (LLVM), and compiling is most of the
 * suite's time. So `both` runs the two passes in ONE page and device, switching `gpu().kernels` between
 * them (`initDevice({ kernels })`): pipelines are cached by their WGSL source, so the second pass compiles
 * only the kernels that differ between the strategies (the forced-tiling GEMM and conv tests, and every
 * strategy-independent op, cost nothing the second time). `--fresh` loads a new page per strategy instead.
 * The step-level tests share ResNet-18 shapes (width 1/8, batch 4) for the same reason, and the cases
 * marked `dawn: "once"` run under the first strategy only: supConLoss at b = 4096 (two minutes of
 * workgroup-memory GEMM on SwiftShader) and the two multi-step training tests (the kernels they repeat are
 * checked under both strategies by models_test's gradient check and ops_loss_test). Every other portable
 * case runs, at the sizes the Deno suite uses. Measured times: BENCHMARKS.md ("Test suite on Dawn").
 */
import { parseArgs } from "node:util";
import type { Browser, Page } from "playwright-core";
import type { CaseResult, DawnPage, PageInfo } from "./page.ts";
import {
  bundleForBrowser,
  chromiumMissing,
  chromiumPath as defaultChromium,
  launchChromium,
  servePage,
  within,
} from "./chromium.ts";

type Strategy = "auto" | "software" | "gpu";

interface CaseReport extends CaseResult {
  name: string;
  strategy: Strategy;
  console: string[];
}

interface StrategyReport {
  strategy: Strategy;
  page?: PageInfo;
  passed: number;
  failed: number;
  ignored: number;
  skipped: number;
  seconds: number;
  error?: string;
  cases: CaseReport[];
}

const args = parseArgs({
  args: Deno.args,
  options: {
    kernels: { type: "string", default: "both" },
    filter: { type: "string" },
    json: { type: "string" },
    timeout: { type: "string", default: "600" },
    chromium: { type: "string" },
    verbose: { type: "boolean", short: "v" },
    fresh: { type: "boolean" },
    help: { type: "boolean", short: "h" },
  },
});
if (args.values.help) {
  console.log(
    "usage: tests/dawn/run.ts [--kernels auto|software|gpu|both] [--filter STR] [--json FILE] " +
      "[--timeout SECONDS per case] [--chromium PATH]",
  );
  Deno.exit(0);
}
const kernelsArg = args.values.kernels;
if (!["auto", "software", "gpu", "both"].includes(kernelsArg)) {
  console.error(`--kernels ${kernelsArg}: expected auto, software, gpu or both`);
  Deno.exit(2);
}
const strategies: Strategy[] = kernelsArg === "both" ? ["auto", "gpu"] : [kernelsArg as Strategy];
const caseTimeoutMs = Number(args.values.timeout) * 1000;
if (!(caseTimeoutMs > 0)) {
  console.error(`--timeout ${args.values.timeout}: expected a positive number of seconds`);
  Deno.exit(2);
}
const chromiumPath = defaultChromium(args.values.chromium);
const filter = args.values.filter;
const fresh = args.values.fresh ?? false;

/** Ends the run without cases: the reason, and a final count that says it failed. */
function abort(message: string): never {
  console.error(`dawn: ${message}`);
  console.log("dawn: 0 passed, 1 failed");
  Deno.exit(1);
}

const missing = await chromiumMissing(chromiumPath);
if (missing) abort(missing);

const bundleStart = performance.now();
let pageJs: string, assertJs: string;
try {
  [pageJs, assertJs] = await Promise.all([
    bundleForBrowser(new URL("./page.ts", import.meta.url), ["node:assert/strict"]),
    bundleForBrowser(new URL("./assert_strict.ts", import.meta.url)),
  ]);
} catch (e) {
  abort(e instanceof Error ? e.message : String(e));
}
console.log(
  `dawn: bundled page (${(pageJs.length / 1024).toFixed(0)} KiB) and assert ` +
    `(${(assertJs.length / 1024).toFixed(0)} KiB) in ${
      ((performance.now() - bundleStart) / 1000).toFixed(1)
    } s`,
);

// The npm assert package reads process.env when it loads: an empty one first.
const HTML = `<!doctype html>
<meta charset="utf-8">
<title>supcon-webgpu tests on Dawn</title>
<link rel="icon" href="data:,">
<script>globalThis.process = { env: {} };</script>
<script type="importmap">{ "imports": { "node:assert/strict": "/assert.js" } }</script>
<script type="module" src="/page.js"></script>
`;
const server = servePage(HTML, { "/page.js": pageJs, "/assert.js": assertJs });
const origin = server.origin;

// --- drive Chromium ---------------------------------------------------------------------------------------

function indent(text: string, prefix = "    "): string {
  return text.split("\n").map((l) => prefix + l).join("\n");
}

/** A loaded page with console and page errors collected into `sink`. */
interface LoadedPage {
  page: Page;
  names: { name: string; once: boolean }[];
  sink: { console: string[]; pageErrors: string[] };
}

async function load(browser: Browser): Promise<LoadedPage> {
  const page = await browser.newPage();
  const sink = { console: [] as string[], pageErrors: [] as string[] };
  page.on("console", (m) => {
    if (args.values.verbose) console.log(`  console.${m.type()}: ${m.text()}`);
    if (m.type() === "error" || m.type() === "warning") sink.console.push(`console.${m.type()}: ${m.text()}`);
  });
  page.on(
    "pageerror",
    (e) => sink.pageErrors.push(`uncaught ${e.stack || `${e.name}: ${e.message}` || String(e)}`),
  );
  page.on("crash", () => sink.pageErrors.push("the page crashed"));
  await page.goto(`${origin}/`);
  await within(
    page.waitForFunction(() => "dawn" in globalThis),
    60_000,
    `the page's module to load (${[...sink.pageErrors, ...sink.console].join("; ")})`,
  );
  const names = await page.evaluate(() => (globalThis as unknown as { dawn: DawnPage }).dawn.list());
  return { page, names, sink };
}

/** Selects the kernel strategy on the page's device (initialising it on first use). */
function init(loaded: LoadedPage, strategy: Strategy): Promise<PageInfo> {
  return within(
    loaded.page.evaluate((k) => (globalThis as unknown as { dawn: DawnPage }).dawn.init(k), strategy),
    60_000,
    "initDevice",
  );
}

async function closeQuietly(page: Page): Promise<void> {
  await within(page.close(), 10_000, "closing the page").catch(() => {});
}

/** The page the strategies share, or null once it had to be dropped. */
let current: LoadedPage | null = null;

async function runStrategy(browser: Browser, strategy: Strategy): Promise<StrategyReport> {
  const report: StrategyReport = {
    strategy,
    passed: 0,
    failed: 0,
    ignored: 0,
    skipped: 0,
    seconds: 0,
    cases: [],
  };
  const start = performance.now();
  let loaded: LoadedPage;
  try {
    if (fresh && current) {
      await closeQuietly(current.page);
      current = null;
    }
    loaded = current ??= await load(browser);
    report.page = await init(loaded, strategy);
  } catch (e) {
    report.error = `loading the page failed: ${e instanceof Error ? e.message : String(e)}`;
    report.failed = 1;
    console.log(`FAILED [${strategy}] ${report.error}`);
    for (const line of current?.sink.console ?? []) console.log(indent(line));
    return report;
  }
  const info = report.page;
  const a = info.adapter;
  console.log(
    `dawn [${strategy}]: adapter vendor=${JSON.stringify(a.vendor)} architecture=${
      JSON.stringify(a.architecture)
    } device=${JSON.stringify(a.device)} description=${
      JSON.stringify(a.description)
    } fallback=${a.isFallback}` +
      `; engine: ${info.engineName}, kernels ${info.kernels}; features ${info.features.join(", ") || "none"}`,
  );
  console.log(`dawn [${strategy}]: ${info.userAgent}`);
  for (const line of loaded.sink.console.splice(0)) console.log(indent(line, "  page: "));

  const selected = loaded.names.map(({ name, once }, index) => ({ name, once, index }))
    .filter(({ name }) => filter === undefined || name.includes(filter));
  const first = strategy === strategies[0];
  for (const { name, once, index } of selected) {
    if (once && !first) {
      report.skipped++;
      console.log(`skipped [${strategy}] ${name} (runs under ${strategies[0]} only)`);
      continue;
    }
    const sink = loaded.sink;
    sink.console.length = 0;
    sink.pageErrors.length = 0;
    let result: CaseResult;
    let reload = false;
    const caseStart = performance.now();
    try {
      result = await within(
        loaded.page.evaluate((i) => (globalThis as unknown as { dawn: DawnPage }).dawn.run(i), index),
        caseTimeoutMs,
        name,
      );
    } catch (e) {
      result = {
        ok: false,
        ms: performance.now() - caseStart,
        error: e instanceof Error ? e.message : String(e),
      };
      reload = true;
    }
    if (sink.pageErrors.length) {
      result = { ...result, ok: false, error: [result.error, ...sink.pageErrors].filter(Boolean).join("\n") };
    }
    if (
      result.deviceLost ||
      /device (was )?lost|Instance reference no longer exists|crash/i.test(result.error ?? "")
    ) {
      reload = true;
    }
    const entry: CaseReport = { name, strategy, ...result, console: [...sink.console] };
    report.cases.push(entry);
    const secs = `${(result.ms / 1000).toFixed(1)} s`;
    if (result.ignored) {
      report.ignored++;
      console.log(`ignored [${strategy}] ${name}`);
    } else if (result.ok) {
      report.passed++;
      console.log(`ok [${strategy}] ${name} (${secs})`);
    } else {
      report.failed++;
      console.log(`FAILED [${strategy}] ${name} (${secs})\n${indent(result.error ?? "")}`);
    }
    for (const line of entry.console.slice(0, 8)) console.log(indent(line.slice(0, 400)));
    if (entry.console.length > 8) console.log(`    … ${entry.console.length - 8} more console messages`);
    if (reload) {
      // A hung, crashed or lost page: the next case (or strategy) gets a fresh page and device.
      await closeQuietly(loaded.page);
      current = null;
      if (index === selected[selected.length - 1].index) break;
      try {
        loaded = current = await load(browser);
        await init(loaded, strategy);
      } catch (e) {
        report.error = `reloading the page failed: ${e instanceof Error ? e.message : String(e)}`;
        report.failed++;
        console.log(`FAILED [${strategy}] ${report.error}`);
        break;
      }
    }
  }
  report.seconds = (performance.now() - start) / 1000;
  return report;
}

let browser: Browser;
try {
  browser = await launchChromium(chromiumPath);
} catch (e) {
  await server.shutdown();
  abort(`could not launch ${chromiumPath}: ${e instanceof Error ? e.message : String(e)}`);
}

const reports: StrategyReport[] = [];
try {
  for (const strategy of strategies) reports.push(await runStrategy(browser, strategy));
  const last = current as LoadedPage | null;
  if (last) await closeQuietly(last.page);
} finally {
  await within(browser.close(), 30_000, "closing Chromium").catch(() => {});
  await server.shutdown();
}

for (const r of reports) {
  const kernels = r.page ? ` (kernels ${r.page.kernels})` : "";
  console.log(
    `dawn [${r.strategy}]${kernels}: ${r.passed} ok, ${r.failed} not ok` +
      `${r.ignored ? `, ${r.ignored} ignored` : ""}${r.skipped ? `, ${r.skipped} skipped` : ""}` +
      ` in ${r.seconds.toFixed(0)} s`,
  );
}
if (args.values.json) {
  await Deno.writeTextFile(
    args.values.json,
    JSON.stringify({ chromium: chromiumPath, reports }, null, 2) + "\n",
  );
}
const passed = reports.reduce((s, r) => s + r.passed, 0);
const failed = reports.reduce((s, r) => s + r.failed, 0);
if (passed + failed === 0) abort(`no case matched${filter === undefined ? "" : ` --filter ${filter}`}`);
console.log(`dawn: ${passed} passed, ${failed} failed`);
Deno.exit(failed > 0 ? 1 : 0);
