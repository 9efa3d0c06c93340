/**
 * The web app (`web/`, "the paper in the browser") driven through headless Chromium with WebGPU on
 * SwiftShader, as the Dawn suite runs it: `web/main.ts` is bundled into a temporary folder with the page's
 * assets (what `deno task web` does into `dist/web/`), served on 127.0.0.1, and each panel is exercised
 * and photographed.
 *
 * - Fig. 1 runs to the end at the defaults; its SC and CE finals match `deno task fig1 --json` (run beside
 *   it) within 1e-3; it pauses (and holds the GPU: Fig. 6 waits), resumes and resets.
 * - The bounds calculator matches the theory CLI (`theory/cli.ts`'s `main`, what `deno task theory` runs)
 *   on five inputs.
 * - Fig. 6 minimises the mean over all 167,960 multisets to within 1e-5 of Theorem 2.
 * - CIFAR-10: files generated in the official format, packed as `cifar-10-binary.tar.gz`, go in through the
 *   file input; SC trains a few steps, pauses (the checkpoint downloaded then is read by
 *   `deno task geometry`), resumes, and ends with a test error and the γ histograms.
 * - About this adapter shows the report and runs the speed probe; without WebGPU the page says so and the
 *   calculator still works; on a phone-sized screen nothing scrolls sideways.
 *
 * Screenshots of each panel go to `$WEB_TEST_OUT` (default `out/web_test/`), each checked not blank: the
 * PNG is decoded in the page and must show more than a few colours and some non-white pixels.
 *
 * @module
 */
import assert from "node:assert/strict";
import os from "node:os";
import { Buffer } from "node:buffer";
import { BUNDLES, copyAssets, serveDir } from "../web/build.ts";
import { gzip } from "../data/gzip.ts";
// deno-lint-ignore no-import-prefix -- the tar library the page uses (web/cifar.ts), pinned the same
import { createTar } from "npm:nanotar@0.3.0";
import { main as theoryCli } from "../theory/cli.ts";

// playwright-core probes for WSL when it loads (reading /proc/sys/fs/binfmt_misc, which Deno grants only
// with --allow-all); this variable, its own test hook, defers the probe, which launching Chromium never needs.
Deno.env.set("__IS_WSL_TEST__", "1");
// It also reads os.homedir() (Chromium channel paths), which needs --allow-sys; the test task grants no
// --allow-sys, so the test answers from $HOME (what homedir() returns anyway).
(os as { homedir: () => string }).homedir = () => Deno.env.get("HOME") ?? "/tmp";

const CHROMIUM = Deno.env.get("CHROMIUM") ?? "/usr/bin/chromium";
const CHROMIUM_FLAGS = [
  "--enable-unsafe-webgpu",
  "--enable-features=Vulkan",
  "--use-vulkan=swiftshader",
  "--use-webgpu-adapter=swiftshader",
  "--disable-gpu-watchdog",
];
const ROOT = new URL("../", import.meta.url).pathname;
const OUT = Deno.env.get("WEB_TEST_OUT") ?? `${ROOT}out/web_test`;
const deno = Deno.execPath();

const hasChromium = await Deno.stat(CHROMIUM).then(() => true, () => false);
if (!hasChromium) console.warn(`web_test: ${CHROMIUM} not found (apt-get install chromium): skipped`);

/** Bundles the app into a new temporary folder, as `deno task web` does into dist/web. */
async function buildApp(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "web_test_" });
  for (const [name, entry] of Object.entries(BUNDLES)) {
    const args = [
      "bundle",
      "--quiet",
      "--platform",
      "browser",
      "--format",
      "esm",
      "-o",
      `${dir}/${name}`,
      entry,
    ];
    const out = await new Deno.Command(deno, { args, cwd: ROOT, stdout: "piped", stderr: "piped" }).output();
    assert.equal(out.code, 0, `deno bundle ${entry} failed:\n${new TextDecoder().decode(out.stderr)}`);
  }
  await copyAssets(dir);
  return dir;
}

/** `deno task fig1 --json` at the defaults, in a subprocess: its summary line. */
async function fig1Cli(): Promise<{ sc: { final: number }; ce: { final: { objective: number } } }> {
  const dir = await Deno.makeTempDir({ prefix: "web_test_fig1_" });
  const out = await new Deno.Command(deno, {
    args: [
      "run",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      "experiments/fig1.ts",
      "--out",
      dir,
      "--json",
      "--quiet",
    ],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, `deno task fig1 failed:\n${new TextDecoder().decode(out.stderr)}`);
  const lines = new TextDecoder().decode(out.stdout).trim().split("\n");
  await Deno.remove(dir, { recursive: true });
  return JSON.parse(lines[lines.length - 1]);
}

/**
 * A small CIFAR-10 in the official binary format (label byte + 3072 CHW bytes per record): five train
 * files of `perFile` records and a test file, written as .bin files into a new folder and packed as
 * `cifar-10-binary.tar.gz` (the official archive's layout, `cifar-10-batches-bin/…`) beside them. Each
 * class has its own mean colour, so a few steps learn something.
 */
async function fakeCifar(perFile: number, testRecords: number): Promise<{ dir: string; tarGz: string }> {
  const dir = await Deno.makeTempDir({ prefix: "web_test_cifar_" });
  let seed = 12345;
  const rand = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
  const file = (n: number) => {
    const bytes = new Uint8Array(n * 3073);
    for (let r = 0; r < n; r++) {
      const label = r % 10;
      bytes[r * 3073] = label;
      for (let c = 0; c < 3; c++) {
        const base = 40 + 18 * ((label * (c + 3)) % 10);
        for (let i = 0; i < 1024; i++) bytes[r * 3073 + 1 + c * 1024 + i] = base + Math.floor(rand() * 60);
      }
    }
    return bytes;
  };
  const files = [
    ...[1, 2, 3, 4, 5].map((i) => ({ name: `data_batch_${i}.bin`, data: file(perFile) })),
    { name: "test_batch.bin", data: file(testRecords) },
  ];
  for (const f of files) await Deno.writeFile(`${dir}/${f.name}`, f.data);
  const tar = createTar(files.map((f) => ({ name: `cifar-10-batches-bin/${f.name}`, data: f.data })));
  const tarGz = `${dir}/cifar-10-binary.tar.gz`;
  await Deno.writeFile(tarGz, await gzip(tar));
  return { dir, tarGz };
}

/** In the page: decode a PNG and count its distinct colours and non-white pixels. */
async function pixelStats(b64: string): Promise<{ colours: number; nonWhite: number; pixels: number }> {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const bitmap = await createImageBitmap(new Blob([bytes], { type: "image/png" }));
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const ctx = canvas.getContext("2d") as unknown as {
    drawImage(image: ImageBitmap, x: number, y: number): void;
    getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray };
  };
  ctx.drawImage(bitmap, 0, 0);
  const data = ctx.getImageData(0, 0, bitmap.width, bitmap.height).data;
  const colours = new Set<number>();
  let nonWhite = 0;
  for (let i = 0; i < data.length; i += 4) {
    const v = (data[i] << 16) | (data[i + 1] << 8) | data[i + 2];
    if (colours.size < 10000) colours.add(v);
    if (v !== 0xffffff && v !== 0xfafafa) nonWhite++;
  }
  return { colours: colours.size, nonWhite, pixels: data.length / 4 };
}

function b64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

Deno.test({
  name: "web app in Chromium (WebGPU on SwiftShader): every panel",
  ignore: !hasChromium,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const t0 = performance.now();
    const cliFig1 = fig1Cli(); // runs beside the page
    const dir = await buildApp();
    const server = serveDir(dir);
    await Deno.mkdir(OUT, { recursive: true });
    const { chromium } = await import("playwright-core");
    const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_FLAGS });
    const errors: string[] = [];
    try {
      const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
      page.on("pageerror", (e) => errors.push(String(e)));
      page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
      await page.goto(`http://127.0.0.1:${server.addr.port}/`);
      await page.waitForSelector("body[data-ready]", { timeout: 60_000 });
      assert.equal(await page.getAttribute("body", "data-ready"), "true", errors.join("\n"));
      assert.equal(await page.isHidden("#no-webgpu"), true, "the page reports no WebGPU");

      /** Screenshots a panel into OUT and checks the picture is not blank. */
      const shoot = async (id: string) => {
        const png = await page.locator(`#${id}`).screenshot({ path: `${OUT}/${id}.png` });
        const s = await page.evaluate(pixelStats, b64(png));
        assert.ok(
          s.colours > 20 && s.nonWhite > s.pixels * 0.01,
          `${id}.png looks blank: ${JSON.stringify(s)}`,
        );
      };

      await t.step("bounds calculator = theory CLI on five inputs", async () => {
        const inputs = [
          { N: 50000, K: 10, b: 256, rho2: 10, lambda: 2.5e-4 },
          { N: 12, K: 3, b: 9, rho2: 1, lambda: 0.01 },
          { N: 300, K: 3, b: 300, rho2: 5, lambda: 0.0371 },
          { N: 50000, K: 100, b: 512, rho2: 2, lambda: 5e-4 },
          { N: 1000, K: 2, b: 16, rho2: 0.5, lambda: 1 },
        ];
        for (const p of inputs) {
          for (const [k, v] of Object.entries(p)) await page.fill(`#bounds-${k}`, String(v));
          const got = Object.fromEntries(
            await page.$$eval(
              "#bounds-out td[data-key]",
              (tds) => tds.map((td) => [td.dataset.key!, td.dataset.value!]),
            ),
          );
          const cli = (args: string[]) => {
            const r = theoryCli([...args, "--json"]);
            assert.equal(r.code, 0, r.stderr);
            return JSON.parse(r.stdout);
          };
          const sc = cli([
            "sc-bound",
            "--N",
            `${p.N}`,
            "--K",
            `${p.K}`,
            "--b",
            `${p.b}`,
            "--rho2",
            `${p.rho2}`,
          ]);
          const rw = cli(["rw", "--K", `${p.K}`, "--rho2", `${p.rho2}`, "--lambda", `${p.lambda}`]);
          const frobW = Math.sqrt(p.K) * rw.rW;
          const ce = cli([
            "ce-bound",
            ...["--K", `${p.K}`, "--rho2", `${p.rho2}`, "--lambda", `${p.lambda}`],
            ...["--rW", `${rw.rW}`, "--frobW", `${frobW}`],
          ]);
          const gamma = cli(["gamma", "--K", `${p.K}`]);
          const want: Record<string, number> = {
            "sc-mean": sc.mean,
            "sc-logtotal": sc.logTotal,
            "sc-iid": sc.iidExpectation,
            rw: rw.rW,
            c2: ce.corollary2.bound,
            c1: ce.corollary1.bound,
            t1: ce.theorem1.bound,
            gamma: gamma.gamma,
          };
          for (const [k, v] of Object.entries(want)) {
            const g = Number(got[k]);
            assert.ok(
              Math.abs(g - v) <= 1e-12 * Math.max(1, Math.abs(v)),
              `${JSON.stringify(p)} ${k}: page ${g}, CLI ${v}`,
            );
          }
          if (sc.numBatches !== undefined && typeof sc.numBatches === "string") {
            assert.equal(got["sc-batches"], sc.numBatches, `${JSON.stringify(p)} |B|`);
          }
        }
        await page.fill("#bounds-K", "7"); // N = 1000 is not divisible by 7: a message, no numbers
        assert.match(await page.textContent("#bounds-status") ?? "", /divisible/);
        assert.equal(await page.isHidden("#bounds-out"), true);
        await page.fill("#bounds-K", "10");
        await shoot("bounds");
      });

      await t.step("Fig. 1 at the defaults matches deno task fig1 within 1e-3", async () => {
        await page.fill("#fig1-speed", "20"); // fewer readbacks; the computation is the same
        await page.click("#fig1-start");
        await page.waitForSelector("#fig1-form[data-state=done], #fig1-form[data-state=failed]", {
          timeout: 240_000,
        });
        assert.equal(
          await page.getAttribute("#fig1-form", "data-state"),
          "done",
          await page.textContent("#fig1-status") ?? "",
        );
        const sc = Number(await page.getAttribute("#fig1-sc-final", "data-value"));
        const ce = Number(await page.getAttribute("#fig1-ce-final", "data-value"));
        const cli = await cliFig1;
        console.log(`  page SC ${sc}, CE ${ce}; CLI SC ${cli.sc.final}, CE ${cli.ce.final.objective}`);
        assert.ok(Math.abs(sc - cli.sc.final) <= 1e-3, `SC: page ${sc}, CLI ${cli.sc.final}`);
        assert.ok(
          Math.abs(ce - cli.ce.final.objective) <= 1e-3,
          `CE: page ${ce}, CLI ${cli.ce.final.objective}`,
        );
        assert.ok(
          Math.abs(sc - 4.596) < 1e-3 && Math.abs(ce - 0.265) < 1e-3,
          `paper: 4.596 / 0.265, page ${sc} / ${ce}`,
        );
        await shoot("fig1");
      });

      await t.step("Fig. 1 pauses, resumes and resets", async () => {
        await page.fill("#fig1-sc-steps", "40");
        await page.fill("#fig1-speed", "1");
        await page.click("#fig1-start");
        await page.waitForFunction(
          "/SC step [1-9]/.test(document.getElementById('fig1-status').textContent)",
        );
        await page.click("#fig1-pause");
        assert.equal(await page.getAttribute("#fig1-pause", "aria-pressed"), "true");
        await page.waitForSelector("#fig1-pause[data-held=true]");
        await page.click("#fig6-start"); // one panel computes at a time: Fig. 6 waits for Fig. 1
        assert.match(await page.textContent("#fig6-status") ?? "", /Fig\. 1 is using the GPU/);
        const held = await page.textContent("#fig1-status");
        await new Promise((r) => setTimeout(r, 1500));
        assert.equal(await page.textContent("#fig1-status"), held, "the run went on while paused");
        await page.click("#fig1-pause");
        await page.waitForFunction(
          `document.getElementById("fig1-status").textContent !== ${JSON.stringify(held)}`,
        );
        await page.click("#fig1-reset");
        await page.waitForSelector("#fig1-form[data-state=idle]", { timeout: 60_000 });
        assert.equal(await page.textContent("#fig1-sc-final"), "—");
        await page.fill("#fig1-sc-steps", "400");
      });

      await t.step("Fig. 6 (defaults, 200 steps) reaches Theorem 2 within 1e-5", async () => {
        await page.fill("#fig6-steps", "200"); // the gap is below 1e-6 by step 150 at the defaults
        await page.fill("#fig6-speed", "50");
        const t1 = performance.now();
        await page.click("#fig6-start");
        await page.waitForSelector("#fig6-form[data-state=done], #fig6-form[data-state=failed]", {
          timeout: 240_000,
        });
        assert.equal(
          await page.getAttribute("#fig6-form", "data-state"),
          "done",
          await page.textContent("#fig6-status") ?? "",
        );
        const empirical = Number(await page.getAttribute("#fig6-final", "data-value"));
        const bound = Number(await page.textContent("#fig6-bound"));
        const rel = (empirical - bound) / bound;
        console.log(
          `  Fig. 6: ${empirical} vs bound ${bound} (relative ${rel.toExponential(2)}) in ${
            ((performance.now() - t1) / 1000).toFixed(0)
          } s`,
        );
        assert.ok(Math.abs(rel) <= 1e-5, `Fig. 6: mean ${empirical}, bound ${bound}`);
        await shoot("fig6");
      });

      await t.step(
        "CIFAR-10 in the page: tar.gz in, SC trains, pauses and resumes, checkpoint for geometry",
        async () => {
          const data = await fakeCifar(20, 50);
          try {
            // As a payload: a path would make playwright stat the file through node:fs, which wants --allow-sys.
            await page.setInputFiles("#cifar-files", {
              name: "cifar-10-binary.tar.gz",
              mimeType: "application/gzip",
              buffer: Buffer.from(await Deno.readFile(data.tarGz)),
            });
            await page.waitForSelector("#cifar-form[data-state=loaded], #cifar-form[data-state=failed]");
            assert.match(
              await page.textContent("#cifar-data-status") ?? "",
              /100 training images .*50 test images/,
            );
            await page.selectOption("#cifar-loss-kind", "sc");
            await page.fill("#cifar-iterations", "8");
            await page.fill("#cifar-batch", "16");
            await page.fill("#cifar-probe", "20");
            await page.click("#cifar-start");
            const started = performance.now();
            while (!/^step [2-6] /.test(await page.textContent("#cifar-status") ?? "")) {
              const state = await page.getAttribute("#cifar-form", "data-state");
              assert.notEqual(state, "failed", await page.textContent("#cifar-status") ?? "");
              assert.ok(
                performance.now() - started < 240_000,
                `no progress: ${await page.textContent("#cifar-status")}`,
              );
              await new Promise((r) => setTimeout(r, 100));
            }
            console.log(`  first steps after ${((performance.now() - started) / 1000).toFixed(1)} s`);
            await page.click("#cifar-pause");
            await page.waitForSelector("#cifar-pause[data-held=true]");
            assert.equal(await page.getAttribute("#cifar-form", "data-state"), "paused");
            const held = await page.$eval(
              "#cifar-progress",
              (p) => (p as unknown as { value: number }).value,
            );
            await new Promise((r) => setTimeout(r, 1500));
            assert.equal(
              await page.$eval("#cifar-progress", (p) => (p as unknown as { value: number }).value),
              held,
            );
            const [download] = await Promise.all([
              page.waitForEvent("download"),
              page.click("#cifar-download"),
            ]);
            const ckpt = `${data.dir}/page.safetensors`;
            await download.saveAs(ckpt);
            // The checkpoint (of the paused step) loads in `deno task geometry` (beside the rest of the run).
            const geometry = new Deno.Command(deno, {
              args: [
                "run",
                "--allow-read",
                "--allow-write",
                "--allow-env",
                "experiments/geometry.ts",
                ...[
                  "--checkpoint",
                  ckpt,
                  "--data",
                  data.dir,
                  "--out",
                  `${data.dir}/geometry`,
                  "--json",
                  "--quiet",
                ],
              ],
              cwd: ROOT,
              stdout: "piped",
              stderr: "piped",
            }).output();
            await page.click("#cifar-pause"); // resume
            const resumed = performance.now();
            await page.waitForSelector("#cifar-form[data-state=done], #cifar-form[data-state=failed]", {
              timeout: 180_000,
            });
            assert.equal(
              await page.getAttribute("#cifar-form", "data-state"),
              "done",
              await page.textContent("#cifar-status") ?? "",
            );
            const trained = performance.now();
            const err = Number(await page.getAttribute("#cifar-error", "data-value"));
            assert.ok(err >= 0 && err <= 1, `test error ${err}`);
            await shoot("cifar");

            const geoWait = performance.now();
            const geo = await geometry;
            const text = new TextDecoder().decode(geo.stdout) + new TextDecoder().decode(geo.stderr);
            assert.equal(
              geo.code,
              0,
              `deno task geometry on the page's checkpoint failed:\n${text.slice(-3000)}`,
            );
            console.log(
              `  page test error ${err}; geometry read the step-${held} checkpoint; seconds: resume → evaluated ` +
                `${((trained - resumed) / 1000).toFixed(1)}, then waited for geometry ${
                  ((performance.now() - geoWait) / 1000).toFixed(1)
                }`,
            );
          } finally {
            await Deno.remove(data.dir, { recursive: true });
          }
        },
      );

      await t.step("About this adapter: report and speed probe", async () => {
        assert.match(await page.textContent("#adapter-table") ?? "", /kernel family/);
        await page.click("#adapter-probe");
        await page.waitForSelector("#adapter[data-probe=done]", { timeout: 120_000 });
        assert.match(await page.textContent("#adapter-probe-out") ?? "", /GFLOP\/s/);
        await shoot("adapter");
      });

      await t.step("without WebGPU: the page says so, and the calculator still works", async () => {
        const bare = await browser.newPage();
        try {
          await bare.addInitScript(
            "Object.defineProperty(Navigator.prototype, 'gpu', { get: () => undefined })",
          );
          await bare.goto(`http://127.0.0.1:${server.addr.port}/`);
          await bare.waitForSelector("body[data-ready]", { timeout: 60_000 });
          assert.equal(await bare.isVisible("#no-webgpu"), true);
          assert.match(await bare.textContent("#no-webgpu") ?? "", /enable-unsafe-webgpu/);
          assert.equal(await bare.isDisabled("#fig1-start"), true);
          assert.match(await bare.textContent("#bounds-out") ?? "", /824\.487/);
          await bare.locator("header").screenshot({ path: `${OUT}/no-webgpu.png` });
        } finally {
          await bare.close();
        }
      });

      await t.step("phone-sized screen: the page lays out in one column", async () => {
        await page.setViewportSize({ width: 390, height: 844 });
        const width = await page.evaluate("document.documentElement.scrollWidth") as number;
        assert.ok(width <= 390, `the page scrolls sideways on a phone (${width} px wide)`);
        await page.screenshot({ path: `${OUT}/phone.png` });
        await page.setViewportSize({ width: 1100, height: 900 });
      });
      assert.deepEqual(errors, [], "errors in the page");
    } finally {
      await browser.close();
      await server.shutdown();
      await Deno.remove(dir, { recursive: true });
    }
    console.log(`  screenshots in ${OUT}/ (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
  },
});
