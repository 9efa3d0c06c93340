/**
 * Prints what WebGPU offers this process, as JSON on stdout: the adapter our engine picks (name,
 * vendor, fallback or hardware, limits, features). Needs no permissions.
 *
 *   deno run bench/device/probe.ts [--require-hardware]
 *
 * With `--require-hardware` it exits with 3 when the adapter is a software/fallback one (or missing),
 * so a script can tell a GPU run from a silent fall back to llvmpipe.
 */
import { requestGpuDevice } from "../../engine/device.ts";

if (import.meta.main) {
  const requireHardware = Deno.args.includes("--require-hardware");
  let code = 0;
  try {
    const handle = await requestGpuDevice();
    console.log(JSON.stringify({ ok: true, ...handle.report }, null, 2));
    if (requireHardware && handle.report.isFallback) code = 3;
    handle.device.destroy();
  } catch (e) {
    console.log(JSON.stringify({ ok: false, error: e instanceof Error ? e.message : String(e) }));
    code = 3;
  }
  Deno.exit(code);
}
