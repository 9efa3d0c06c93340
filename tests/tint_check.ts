/**
 * Compiles every kernel in a folder written by `tests/wgsl_dump_preload.ts` with Dawn's Tint — the WGSL
 * compiler of Chrome and every Dawn-based browser — in headless Chromium (WebGPU on SwiftShader), and reports
 * each kernel Tint rejects with its name, the test module that generated it and Tint's message. Naga (Deno's
 * compiler) accepts WGSL that Tint rejects (a constant NaN, for one), so without this a kernel can pass every
 * Deno test and fail in Chrome.
 *
 * ```sh
 * npx -y deno@2.9.6 run --allow-read --allow-env --allow-sys --allow-net=127.0.0.1 \
 *   --allow-run=/usr/bin/chromium --allow-write=/tmp tests/tint_check.ts DIR
 * ```
 *
 * The last line reads `tint: N passed, M failed`, one per distinct kernel. (npm `webgpu`, Dawn outside a
 * browser, would need no page, but on this project's machines it aborts within a few compilations, under
 * Deno and Node alike; Chromium's Dawn is stable.)
 *
 * @module
 */
import { chromiumPath, launchChromium, servePage } from "./dawn/chromium.ts";

/** Kernels sent to the page per evaluation (keeps each message a few MB). */
const BATCH_BYTES = 4 * 2 ** 20;

interface Kernel {
  file: string;
  header: string;
  code: string;
}

/** In the page: compile each source, return Tint's errors per source ("" when accepted). */
async function compileInPage(codes: string[]): Promise<string[]> {
  const g = globalThis as unknown as { __device?: GPUDevice; navigator: Navigator };
  if (!g.__device) {
    const adapter = await g.navigator.gpu?.requestAdapter();
    if (!adapter) throw new Error("no WebGPU adapter in the page");
    g.__device = await adapter.requestDevice();
  }
  const device = g.__device;
  return await Promise.all(codes.map(async (code) => {
    const info = await device.createShaderModule({ code }).getCompilationInfo();
    return info.messages.filter((m) => m.type === "error")
      .map((m) => `${m.lineNum}:${m.linePos}: ${m.message}`).join("\n");
  }));
}

function readKernels(dir: string): Kernel[] {
  return [...Deno.readDirSync(dir)].filter((e) => e.name.endsWith(".wgsl"))
    .map((e) => e.name).sort().map((file) => {
      const text = Deno.readTextFileSync(`${dir}/${file}`);
      const lines = text.split("\n");
      const header = lines.slice(0, 2).map((l) => l.replace(/^\/\/ /, "")).join(", ");
      return { file, header, code: text };
    });
}

if (import.meta.main) {
  const dir = Deno.args[0];
  if (!dir) {
    console.error("usage: tint_check.ts DIR (a folder of .wgsl files from tests/wgsl_dump_preload.ts)");
    Deno.exit(2);
  }
  const path = chromiumPath();
  const kernels = readKernels(dir);
  const served = servePage("<!doctype html><title>tint</title>", {});
  let passed = 0;
  let failed = 0;
  const browser = await launchChromium(path).catch((e) => {
    console.error(`tint: could not launch ${path} (apt-get install chromium): ${e.message}`);
    console.log("tint: 0 passed, 1 failed");
    Deno.exit(1);
  });
  try {
    const page = await browser.newPage();
    await page.goto(`${served.origin}/`);
    for (let i = 0; i < kernels.length;) {
      const batch: Kernel[] = [];
      for (let bytes = 0; i < kernels.length && (batch.length === 0 || bytes < BATCH_BYTES); i++) {
        batch.push(kernels[i]);
        bytes += kernels[i].code.length;
      }
      const errors = await page.evaluate(compileInPage, batch.map((k) => k.code));
      errors.forEach((error, j) => {
        if (!error) return passed++;
        failed++;
        console.log(`FAILED: ${batch[j].header} (${batch[j].file})\n${error}\n`);
      });
    }
  } finally {
    await browser.close();
    await served.shutdown();
  }
  console.log(`Tint (Chromium's Dawn) compiled ${kernels.length} distinct kernels from ${dir}`);
  console.log(`tint: ${passed} passed, ${failed} failed`);
  Deno.exit(failed > 0 || passed === 0 ? 1 : 0);
}
