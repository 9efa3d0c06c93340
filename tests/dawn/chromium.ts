/**
 * What the Dawn test runner (`tests/dawn/run.ts`) and the browser benchmark (`bench/browser.ts`) share: the
 * Chromium flags for WebGPU on SwiftShader, a browser bundle of a page entry (`Deno.bundle`, so the caller
 * runs with `--unstable-bundle`), a page served on 127.0.0.1 (`about:blank` has no `navigator.gpu`), and
 * playwright-core's Chromium launched headless.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import type { Browser } from "playwright-core";

/** Headless Chromium with WebGPU on SwiftShader: Dawn, with Tint compiling the WGSL. */
export const CHROMIUM_FLAGS: readonly string[] = [
  "--enable-unsafe-webgpu",
  "--enable-features=Vulkan",
  "--use-vulkan=swiftshader",
  "--use-webgpu-adapter=swiftshader",
  // SwiftShader runs a large submit for seconds; the GPU watchdog must not take that for a hang.
  "--disable-gpu-watchdog",
];

/** The Chromium binary: `explicit`, else `$CHROMIUM`, else Debian's /usr/bin/chromium. */
export function chromiumPath(explicit?: string): string {
  return explicit ?? Deno.env.get("CHROMIUM") ?? "/usr/bin/chromium";
}

/** Why Chromium cannot be used at `path` (the fix included), or null when the file exists. */
export async function chromiumMissing(path: string): Promise<string | null> {
  try {
    await Deno.stat(path);
    return null;
  } catch {
    return `chromium not found at ${path}: apt-get install chromium (or pass --chromium PATH)`;
  }
}

/** Launches Chromium headless with {@link CHROMIUM_FLAGS}. */
export async function launchChromium(path: string): Promise<Browser> {
  // playwright-core probes for WSL when it loads, reading /proc/sys/fs/binfmt_misc, which Deno grants only
  // with --allow-all; this variable (its own test hook) skips the probe, which launching never needs.
  Deno.env.set("__IS_WSL_TEST__", "1");
  const { chromium } = await import("playwright-core");
  return await chromium.launch({ executablePath: path, headless: true, args: [...CHROMIUM_FLAGS] });
}

interface BundleApi {
  bundle(options: {
    entrypoints: string[];
    platform: "browser";
    format: "esm";
    write: false;
    external?: string[];
  }): Promise<{ success: boolean; errors: { text?: string }[]; outputFiles?: { text(): string }[] }>;
}

/**
 * An ES-module browser bundle of `entry` (a file URL); `external` specifiers stay imports, for the page's
 * import map to resolve. Throws with the bundler's errors.
 */
export async function bundleForBrowser(entry: URL, external: string[] = []): Promise<string> {
  const api = Deno as unknown as Partial<BundleApi>;
  if (typeof api.bundle !== "function") throw new Error("Deno.bundle is missing: run with --unstable-bundle");
  const result = await api.bundle({
    entrypoints: [fileURLToPath(entry)],
    platform: "browser",
    format: "esm",
    write: false,
    external,
  });
  if (!result.success || !result.outputFiles?.length) {
    const errors = result.errors.map((e) => e.text ?? JSON.stringify(e)).join("\n");
    throw new Error(`bundling ${fileURLToPath(entry)} failed:\n${errors}`);
  }
  return result.outputFiles[0].text();
}

/** A page served on 127.0.0.1: `/` is `html`, every other path a script from `scripts`. */
export interface ServedPage {
  origin: string;
  shutdown(): Promise<void>;
}

/** Serves `html` at `/` and each of `scripts` (path → JavaScript) on 127.0.0.1, on a free port. */
export function servePage(html: string, scripts: Record<string, string>): ServedPage {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) => {
    const path = new URL(request.url).pathname;
    if (path === "/") return new Response(html, { headers: { "content-type": "text/html; charset=utf-8" } });
    const js = scripts[path];
    if (js !== undefined) {
      return new Response(js, { headers: { "content-type": "text/javascript; charset=utf-8" } });
    }
    return new Response(null, { status: 404 });
  });
  return { origin: `http://127.0.0.1:${server.addr.port}`, shutdown: () => server.shutdown() };
}

/** Races `promise` against a timer; the timer's rejection names what timed out. */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms / 1000} s: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
