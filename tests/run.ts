/**
 * The test suite on every WebGPU implementation and kernel strategy we can reach, as `deno task test` runs it:
 *
 * 1. `deno test` over tests/ on Deno's WebGPU (wgpu, Naga compiles the WGSL), kernels chosen by adapter;
 *    every kernel generated is also written out (`tests/wgsl_dump_preload.ts`);
 * 2. the op, model and training tests again with the hardware-GPU kernels forced (`SUPCON_KERNELS=gpu`:
 *    workgroup-memory GEMM tiles and their convolution routes), the paths desktop GPUs take;
 * 3. every distinct kernel of 1 and 2 compiled by Tint, Chrome's WGSL compiler (`tests/tint_check.ts`);
 * 4. the portable tests in headless Chromium (Dawn on SwiftShader) under both strategies
 *    (`tests/dawn/run.ts`).
 *
 * ```sh
 * deno task test                          # all four
 * deno task test tests/ops_conv_test.ts   # the named files only, through steps 1–3 (no Chromium suite)
 * deno task test --no-dawn --no-gpu       # skip steps (also --no-tint)
 * ```
 *
 * Each step prints as it runs; the end is a table by implementation and strategy and the line
 * `N passed, N failed`. The exit status is non-zero when anything failed.
 *
 * @module
 */
import { parseArgs } from "node:util";

const TEST_FLAGS = ["--allow-read", "--allow-write", "--allow-net=127.0.0.1", "--allow-run", "--allow-env"];
const DAWN_FLAGS = [
  "--unstable-bundle",
  "--allow-read",
  "--allow-write=/tmp",
  "--allow-env",
  "--allow-sys",
  "--allow-net=127.0.0.1",
  "--allow-run",
];
const TINT_FLAGS = [
  "--allow-read",
  "--allow-write=/tmp",
  "--allow-env",
  "--allow-sys",
  "--allow-net=127.0.0.1",
  "--allow-run",
];

/** Test files re-run with the hardware-GPU kernels: everything that generates kernels for ops and models. */
const GPU_STRATEGY_FILES =
  /^tests\/(ops_\w+|models|optim|training|engine_core|augment|memory|loop_cap|perf_invariants|tuning)_test\.ts$/;

interface Row {
  implementation: string;
  kernels: string;
  passed: number;
  failed: number;
  note?: string;
}

const args = parseArgs({
  args: Deno.args,
  allowPositionals: true,
  options: {
    "no-gpu": { type: "boolean" },
    "no-tint": { type: "boolean" },
    "no-dawn": { type: "boolean" },
    help: { type: "boolean", short: "h" },
  },
});
if (args.values.help) {
  console.log("usage: deno task test [FILES...] [--no-gpu] [--no-tint] [--no-dawn]");
  Deno.exit(0);
}
const files = args.positionals;
const deno = Deno.execPath();
const dump = Deno.makeTempDirSync({ prefix: "supcon-wgsl-" });
const rows: Row[] = [];

// deno-lint-ignore no-control-regex
const stripAnsi = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, "");

/** Runs `deno ...argv`, echoing its output, and returns the exit code and the output's last 64 KiB. */
async function run(argv: string[], env: Record<string, string>): Promise<{ code: number; tail: string }> {
  const child = new Deno.Command(deno, { args: argv, env, stdout: "piped", stderr: "inherit" }).spawn();
  let tail = "";
  const decoder = new TextDecoder();
  for await (const chunk of child.stdout) {
    await Deno.stdout.write(chunk);
    tail = (tail + decoder.decode(chunk, { stream: true })).slice(-65536);
  }
  const { code } = await child.status;
  return { code, tail: stripAnsi(tail) };
}

/** Counts from `deno test`'s summary (`ok | 12 passed (3 steps) | 0 failed`); steps are not counted. */
async function denoTest(kernels: string, testFiles: string[]): Promise<void> {
  // Tuning off unless asked for: a developer's tuning cache must not change the kernels under test (the
  // tuning tests select their modes and caches themselves).
  const env = {
    SUPCON_KERNELS: kernels,
    SUPCON_WGSL_DUMP: dump,
    SUPCON_TUNING: Deno.env.get("SUPCON_TUNING") ?? "off",
  };
  const { code, tail } = await run(
    ["test", ...TEST_FLAGS, "--preload", "tests/wgsl_dump_preload.ts", ...testFiles],
    env,
  );
  const m = [...tail.matchAll(/^(?:ok|FAILED) \| (\d+) passed(?: \(\d+ steps?\))? \| (\d+) failed/gm)].at(-1);
  const passed = m ? Number(m[1]) : 0;
  let failed = m ? Number(m[2]) : 0;
  if (code !== 0 && failed === 0) failed = 1;
  rows.push({ implementation: "wgpu (Deno)", kernels, passed, failed, note: m ? undefined : "no summary" });
}

/** Counts from a closing line `<word>: N passed, N failed`. */
async function script(implementation: string, kernels: string, argv: string[]): Promise<Row> {
  const { code, tail } = await run(argv, {});
  const m = [...tail.matchAll(/^\w+: (\d+) passed, (\d+) failed/gm)].at(-1);
  const passed = m ? Number(m[1]) : 0;
  let failed = m ? Number(m[2]) : 0;
  if (code !== 0 && failed === 0) failed = 1;
  const row = { implementation, kernels, passed, failed, note: m ? undefined : "no summary" };
  rows.push(row);
  return row;
}

const all = [...Deno.readDirSync("tests")].filter((e) => e.isFile && e.name.endsWith("_test.ts"))
  .map((e) => `tests/${e.name}`).sort();
const selected = files.length ? files : ["tests/"];
const started = Date.now();

console.log("\n=== 1. wgpu (Deno's WebGPU), kernels chosen by adapter ===");
await denoTest("auto", selected);

if (!args.values["no-gpu"]) {
  const gpuFiles = (files.length ? files : all).map((f) => f.replace(/^\.\//, ""))
    .filter((f) => GPU_STRATEGY_FILES.test(f));
  if (gpuFiles.length) {
    console.log("\n=== 2. wgpu (Deno's WebGPU), hardware-GPU kernels forced (SUPCON_KERNELS=gpu) ===");
    await denoTest("gpu", gpuFiles);
  }
}

if (!args.values["no-tint"]) {
  console.log("\n=== 3. Tint (Chrome's WGSL compiler) on every kernel generated above ===");
  const row = await script("Tint (Chromium)", "compile", ["run", ...TINT_FLAGS, "tests/tint_check.ts", dump]);
  // One check per distinct kernel; counted as one test in the total.
  if (!row.note) row.note = `${row.passed + row.failed} distinct kernels, ${row.failed} rejected`;
  row.passed = row.failed === 0 ? 1 : 0;
}

if (!args.values["no-dawn"] && files.length === 0) {
  console.log("\n=== 4. Dawn (headless Chromium, SwiftShader): the portable tests, both strategies ===");
  const { code, tail } = await run(["run", ...DAWN_FLAGS, "tests/dawn/run.ts", "--kernels", "both"], {});
  // Per strategy: "dawn [auto] (kernels software): 80 ok, 0 not ok in 312 s".
  const perStrategy = [...tail.matchAll(/^dawn \[(\w+)\](?: \(kernels (\w+)\))?: (\d+) ok, (\d+) not ok/gm)];
  const total = [...tail.matchAll(/^dawn: (\d+) passed, (\d+) failed/gm)].at(-1);
  if (perStrategy.length) {
    for (const m of perStrategy) {
      const kernels = m[2] && m[2] !== m[1] ? `${m[1]}→${m[2]}` : m[1];
      rows.push({ implementation: "Dawn (Chromium)", kernels, passed: +m[3], failed: +m[4] });
    }
  } else {
    rows.push({
      implementation: "Dawn (Chromium)",
      kernels: "both",
      passed: total ? +total[1] : 0,
      failed: total ? +total[2] : 1,
    });
  }
  const counted = rows.filter((r) => r.implementation === "Dawn (Chromium)");
  if (code !== 0 && counted.every((r) => r.failed === 0)) counted[0].failed = 1;
}

Deno.removeSync(dump, { recursive: true });
const pad = (s: string | number, n: number) => String(s).padEnd(n);
console.log(`\n=== summary (${((Date.now() - started) / 60000).toFixed(1)} min) ===`);
console.log(`${pad("implementation", 18)}${pad("kernels", 16)}${pad("passed", 8)}${pad("failed", 8)}`);
for (const r of rows) {
  console.log(
    `${pad(r.implementation, 18)}${pad(r.kernels, 16)}${pad(r.passed, 8)}${pad(r.failed, 8)}${r.note ?? ""}`,
  );
}
const passed = rows.reduce((s, r) => s + r.passed, 0);
const failed = rows.reduce((s, r) => s + r.failed, 0);
console.log(`${passed} passed, ${failed} failed`);
Deno.exit(failed > 0 ? 1 : 0);
