/**
 * Loads the TF.js peer (bench/peers/tfjs.ts and its npm packages) without touching a GPU, and prints
 * `{"ok": true, "exports": [...]}`. prepare.sh runs it with `--cached-only` against the pruned npm cache
 * it stages, so a cache that lacks a file TF.js loads fails here rather than on the GPU machine.
 *
 *   DENO_DIR=<staged> deno run --cached-only bench/device/load_tfjs.ts
 */
if (import.meta.main) {
  const m = await import("../peers/tfjs.ts");
  console.log(JSON.stringify({ ok: true, exports: Object.keys(m).sort() }));
}
