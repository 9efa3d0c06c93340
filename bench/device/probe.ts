/**
 * Prints what WebGPU offers this process, as JSON on stdout: the adapter our engine picks (name,
 * vendor, fallback or hardware, limits, features), the backend asked for through
 * `DENO_WEBGPU_BACKEND` (readable with `--allow-env=DENO_WEBGPU_BACKEND`; `null` without it) and a
 * verdict: `"hardware"`, or why the adapter is not a GPU one.
 *
 *   deno run [--allow-env=DENO_WEBGPU_BACKEND] bench/device/probe.ts [--require-hardware]
 *
 * With `--require-hardware` it exits with 3 unless the verdict is `"hardware"`: the adapter is a
 * software/fallback one (llvmpipe, lavapipe, SwiftShader, WARP, Mesa's software vendor id), looks like
 * an OpenGL renderer, the backend asked for is not Vulkan, or there is no adapter at all. So a script can
 * tell a GPU run over Vulkan from a silent fall back to llvmpipe or to the GL backend.
 */
import { type AdapterReport, requestGpuDevice } from "../../engine/device.ts";

/** Mesa's Khronos vendor id (0x10005), reported by llvmpipe (GL) and lavapipe (Vulkan). */
const MESA_VENDOR_ID = "65541";

/**
 * `null` when the adapter is a hardware one reached over Vulkan, else why not. `backend` is the value
 * of `DENO_WEBGPU_BACKEND` (`null`: not readable, so not checked; `""`: unset, wgpu picks).
 */
export function notHardwareReason(report: AdapterReport, backend: string | null): string | null {
  if (report.isFallback) return `a fallback (software) adapter: ${report.name}`;
  if (/llvmpipe|lavapipe|softpipe|swiftshader|warp/i.test(report.name)) {
    return `a software renderer: ${report.name}`;
  }
  if (report.vendor === MESA_VENDOR_ID) return `Mesa's software vendor id ${MESA_VENDOR_ID}: ${report.name}`;
  // GL renderer strings: "NVIDIA H200/PCIe/SSE2", "ANGLE (...)", "... OpenGL ..." (wgpu's GL backend).
  if (/\/PCIe\/|\/SSE2|OpenGL/i.test(report.name) || /\bANGLE\b/.test(report.name)) {
    return `an OpenGL renderer: ${report.name}`;
  }
  if (backend !== null && backend.toLowerCase() !== "vulkan") {
    return `DENO_WEBGPU_BACKEND is ${JSON.stringify(backend)}, not "vulkan"`;
  }
  return null;
}

function readBackend(): string | null {
  const status = Deno.permissions.querySync({ name: "env", variable: "DENO_WEBGPU_BACKEND" });
  return status.state === "granted" ? Deno.env.get("DENO_WEBGPU_BACKEND") ?? "" : null;
}

if (import.meta.main) {
  const requireHardware = Deno.args.includes("--require-hardware");
  const backend = readBackend();
  let code = 0;
  try {
    const handle = await requestGpuDevice();
    const reason = notHardwareReason(handle.report, backend);
    console.log(
      JSON.stringify({ ok: true, backend, verdict: reason ?? "hardware", ...handle.report }, null, 2),
    );
    if (requireHardware && reason) code = 3;
    handle.device.destroy();
  } catch (e) {
    const error = e instanceof Error ? e.message : String(e);
    console.log(JSON.stringify({ ok: false, backend, verdict: "no adapter", error }));
    code = 3;
  }
  Deno.exit(code);
}
