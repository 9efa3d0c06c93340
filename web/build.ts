/**
 * `deno task web`: builds the static web app into `dist/web/` (the task bundles `web/main.ts` to
 * `dist/web/app.js` first; this copies the page and its style sheet beside it). With `--serve` it then
 * serves `dist/web/` on 127.0.0.1 (`--port N`, default 8000; 0 picks a free port) and prints the URL.
 *
 * `dist/web/` is hostable on any static host: three files, no server code. WebGPU wants a secure
 * context: `https://`, or `http://localhost` / `127.0.0.1` as here.
 *
 * @module
 */
import { parseArgs } from "node:util";

/** The files of the app, as copied from `web/` into the output folder beside the bundle. */
export const ASSETS = ["index.html", "style.css"] as const;

/** The bundles `deno task web` writes: the app, and `node:path` for the page's import map. */
export const BUNDLES = { "app.js": "web/main.ts", "node-path.js": "web/node_path.ts" } as const;

const TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  css: "text/css; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  png: "image/png",
};

/** Copies the page's assets from `web/` into `outDir` (which must already hold `app.js`). */
export async function copyAssets(outDir: string): Promise<void> {
  await Deno.mkdir(outDir, { recursive: true });
  for (const name of ASSETS) {
    await Deno.copyFile(new URL(name, import.meta.url), `${outDir}/${name}`);
  }
  for (const name of Object.keys(BUNDLES)) {
    await Deno.stat(`${outDir}/${name}`).catch(() => {
      throw new Error(`${outDir}/${name} is missing: run \`deno task web\` (it bundles first)`);
    });
  }
}

/** Serves the files of `dir` (no listing, no paths outside it) on 127.0.0.1:`port`. */
export function serveDir(dir: string, port = 0): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve({ hostname: "127.0.0.1", port, onListen() {} }, async (request) => {
    let path = decodeURIComponent(new URL(request.url).pathname);
    if (path === "/") path = "/index.html";
    const name = path.slice(1);
    if (!/^[A-Za-z0-9_.-]+$/.test(name) || name.startsWith(".")) {
      return new Response("not found", { status: 404 });
    }
    try {
      const body = await Deno.readFile(`${dir}/${name}`);
      const type = TYPES[name.split(".").pop() ?? ""] ?? "application/octet-stream";
      return new Response(body, { headers: { "content-type": type, "cache-control": "no-cache" } });
    } catch {
      return new Response("not found", { status: 404 });
    }
  });
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      serve: { type: "boolean" },
      port: { type: "string", default: "8000" },
      out: { type: "string" },
    },
  });
  const out = values.out ?? new URL("../dist/web", import.meta.url).pathname;
  await copyAssets(out);
  const size = (await Deno.stat(`${out}/app.js`)).size;
  console.log(`web: ${out}/ (index.html, style.css, node-path.js, app.js ${(size / 1024).toFixed(0)} KiB)`);
  if (values.serve) {
    const server = serveDir(out, Number(values.port));
    console.log(`web: serving on http://127.0.0.1:${server.addr.port}/ (Ctrl-C to stop)`);
  }
}
