/**
 * GEMM tilings side by side in Chromium (Dawn on SwiftShader, headless): the 1024³ matmul and the three
 * passes of four ResNet-18 (CIFAR) 3×3 layers (stem, l1, l3a stride 2, l4b) at `--batch`, each timed under
 * every tiling of `--tilings` with the samples of the tilings alternating in one page and device (so load on
 * shared cores hits all of them alike). The "gpu" kernel strategy's routes; `null` is the engine's choice.
 *
 * ```sh
 * npx -y deno@2.9.6 run --unstable-bundle --allow-read --allow-write --allow-env --allow-sys \
 *   --allow-net=127.0.0.1 --allow-run=/usr/bin/chromium bench/browser_tilings.ts \
 *   [--tilings '[TILING_JSON, …]'] [--samples 5] [--batch 8] [--chromium PATH]
 * ```
 *
 * The default compares the "gpu" strategy's vec4 workgroup tiles (`SHARED_TILING`) with the scalar ones
 * they replaced (`SHARED_SCALAR_TILING`). Prints one markdown table: median ms per tiling and, after the
 * first, its speed-up over the first (the first's time over its own: above 1 is faster).
 *
 * @module
 */
import { parseArgs } from "node:util";
import type { TilingsPage } from "./browser_tilings_page.ts";
import { type GemmTiling, SHARED_SCALAR_TILING, SHARED_TILING, validateTiling } from "../shaders/gemm.ts";
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
    tilings: { type: "string" },
    samples: { type: "string", default: "5" },
    batch: { type: "string", default: "8" },
    chromium: { type: "string" },
  },
});
const tilings: (GemmTiling | null)[] = args.values.tilings
  ? JSON.parse(args.values.tilings)
  : [SHARED_SCALAR_TILING, SHARED_TILING];
for (const t of tilings) if (t) validateTiling(t);
const names = tilings.map((t) => (t ? JSON.stringify(t) : "engine"));

const path = chromiumPath(args.values.chromium);
const missing = await chromiumMissing(path);
if (missing) {
  console.error(missing);
  Deno.exit(1);
}
const js = await bundleForBrowser(new URL("./browser_tilings_page.ts", import.meta.url));
const server = servePage(
  `<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><script type="module" src="/page.js"></script>`,
  { "/page.js": js },
);
const browser = await launchChromium(path);
const load = Deno.loadavg();
try {
  const page = await browser.newPage();
  page.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning") console.log(`  console.${m.type()}: ${m.text()}`);
  });
  await page.goto(`${server.origin}/`);
  await within(page.waitForFunction(() => "tilings" in globalThis), 60_000, "the page to load");
  const times = await within(
    page.evaluate(
      ([t, s, b]) => (globalThis as unknown as { tilings: TilingsPage }).tilings.run(t, s, b),
      [tilings, Number(args.values.samples), Number(args.values.batch)] as const,
    ),
    60 * 60_000,
    "the cases",
  );
  console.log(
    `Chromium (Dawn) on SwiftShader, kernels gpu, batch ${args.values.batch}, median of ${args.values.samples}`,
  );
  names.forEach((n, j) => console.log(`  tiling ${j + 1}: ${n}`));
  console.log(`\n| case | ${names.map((_, j) => `tiling ${j + 1} ms`).join(" | ")} |`);
  console.log(`| --- | ${names.map(() => "---:").join(" | ")} |`);
  for (const [name, ms] of Object.entries(times)) {
    const cells = ms.map((m, j) => `${m.toFixed(0)}${j ? ` (×${(ms[0] / m).toFixed(2)})` : ""}`);
    console.log(`| ${name} | ${cells.join(" | ")} |`);
  }
  console.log(
    `\nload average before: ${load.map((l) => l.toFixed(2)).join(", ")}; after: ${
      Deno.loadavg().map((l) => l.toFixed(2)).join(", ")
    } (${navigator.hardwareConcurrency} CPUs)`,
  );
} finally {
  await within(browser.close(), 30_000, "closing Chromium").catch(() => {});
  await server.shutdown();
}
