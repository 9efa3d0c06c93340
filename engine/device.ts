/**
 * Adapter and device: selection, limits, features, error surfacing and an adapter report.
 *
 * Deno invalidates a GPUAdapter once `requestDevice` has been called on it, so everything we want to
 * know about the adapter (info, limits, features) is copied out first.
 */

/** What we learned about the adapter before requesting the device. */
export interface AdapterReport {
  /** Human-readable adapter name (Mesa's `llvmpipe (...)` on the software adapter). */
  name: string;
  /** Vendor string (or PCI id) the adapter reports. */
  vendor: string;
  /** Architecture string the adapter reports (often empty). */
  architecture: string;
  /** Device string the adapter reports (a PCI id, or empty). */
  device?: string;
  /** Description the adapter reports (driver and version where the implementation says; may be empty). */
  description?: string;
  /** True for software/fallback adapters (llvmpipe, lavapipe, WARP). */
  isFallback: boolean;
  /** Limits granted to our device (what we requested, which is the adapter's maximum). */
  limits: Record<string, number>;
  /** Features enabled on our device. */
  features: string[];
}

/** The limits we raise above WebGPU's defaults: the device defaults are the spec's minimums. */
const RAISED_LIMITS = [
  "maxStorageBufferBindingSize",
  "maxBufferSize",
  "maxComputeWorkgroupStorageSize",
  "maxComputeInvocationsPerWorkgroup",
  "maxComputeWorkgroupSizeX",
  "maxComputeWorkgroupSizeY",
  "maxComputeWorkgroupSizeZ",
  "maxComputeWorkgroupsPerDimension",
  "maxStorageBuffersPerShaderStage",
  "maxUniformBufferBindingSize",
] as const;

/** Features we use when present (never requested when the adapter lacks them). */
const WANTED_FEATURES = ["timestamp-query", "subgroups", "shader-f16"] as const;

/** Thrown when WebGPU reports a validation, out-of-memory or internal error, or loses the device. */
export class GpuError extends Error {
  /** `message` says what failed and, where known, which kernel or ops. */
  constructor(message: string) {
    super(message);
    this.name = "GpuError";
  }
}

/** Options for {@link requestGpuDevice}. */
export interface DeviceOptions {
  /** Prefer a discrete GPU (default) or an integrated one. */
  powerPreference?: GPUPowerPreference;
  /**
   * Which kernels to generate (see `engine/strategy.ts`): `"auto"` (default: `"software"` on a fallback
   * adapter, `"gpu"` otherwise), or force one family on any adapter. Without this option the environment
   * variable `SUPCON_KERNELS` (where the runtime has one and grants it) is read.
   */
  kernels?: "auto" | "software" | "gpu";
  /**
   * How GEMM kernels are chosen (see `engine/tune/mode.ts`): `"off"` (heuristic), `"cached"` (default:
   * cached measurements where present) or `"measure"` (time the candidates of every new shape class).
   * Without this option the environment variable `SUPCON_TUNING` is read.
   */
  tuning?: "off" | "cached" | "measure";
}

/** A device together with the adapter report and device-level error state. */
export interface GpuDeviceHandle {
  /** The device. */
  device: GPUDevice;
  /** The adapter report read before the device was requested. */
  report: AdapterReport;
  /** Set when the device was lost; every later operation throws it. */
  lostReason: string | null;
  /** Errors WebGPU raised outside an error scope, thrown at the next synchronisation. */
  uncaptured: string[];
}

const NO_ADAPTER_HELP = "No WebGPU adapter found. Install a GPU driver with Vulkan support, or on Linux " +
  "without a GPU install Mesa's software Vulkan driver (Debian/Ubuntu: `apt-get install mesa-vulkan-drivers`). " +
  "DENO_WEBGPU_BACKEND=vulkan|gl selects the backend Deno uses.";

/** Finds an adapter (hardware preferred), reads its report, and requests a device with raised limits. */
export async function requestGpuDevice(options: DeviceOptions = {}): Promise<GpuDeviceHandle> {
  if (typeof navigator === "undefined" || !("gpu" in navigator) || !navigator.gpu) {
    throw new GpuError(`WebGPU is not available in this runtime. ${NO_ADAPTER_HELP}`);
  }
  let adapter = await navigator.gpu.requestAdapter({
    powerPreference: options.powerPreference ?? "high-performance",
  });
  if (!adapter) adapter = await navigator.gpu.requestAdapter({ forceFallbackAdapter: true });
  if (!adapter) throw new GpuError(NO_ADAPTER_HELP);

  // Copy everything out of the adapter before requestDevice (Deno invalidates it afterwards).
  const info = adapter.info;
  // Chrome leaves description and device empty: vendor and architecture ("google swiftshader") then.
  const name = info.description || info.device ||
    [info.vendor, info.architecture].filter(Boolean).join(" ") ||
    "unknown adapter";
  const isFallback = Boolean(
    (info as unknown as { isFallbackAdapter?: boolean }).isFallbackAdapter ??
      (adapter as unknown as { isFallbackAdapter?: boolean }).isFallbackAdapter ??
      /llvmpipe|lavapipe|swiftshader|warp/i.test(name),
  );
  const requiredLimits: Record<string, number> = {};
  for (const key of RAISED_LIMITS) {
    const value = (adapter.limits as unknown as Record<string, number>)[key];
    if (typeof value === "number") requiredLimits[key] = value;
  }
  const requiredFeatures = WANTED_FEATURES.filter((f) => adapter.features.has(f)) as GPUFeatureName[];
  const vendor = info.vendor;
  const architecture = info.architecture;

  // We ask for exactly what the adapter reports. An implementation that still refuses (some browsers cap
  // what a page may request) gets a second request at WebGPU's defaults, which every adapter offers; the
  // report then holds the device's actual limits, and limit-driven choices (GEMM tiles, binding chunks)
  // follow them.
  let device: GPUDevice;
  try {
    device = await adapter.requestDevice({ requiredLimits, requiredFeatures });
  } catch {
    device = await adapter.requestDevice({ requiredFeatures });
    for (const key of RAISED_LIMITS) {
      const value = (device.limits as unknown as Record<string, number>)[key];
      if (typeof value === "number") requiredLimits[key] = value;
    }
  }
  const handle: GpuDeviceHandle = {
    device,
    report: {
      name,
      vendor,
      architecture,
      device: info.device ?? "",
      description: info.description ?? "",
      isFallback,
      limits: { ...requiredLimits },
      features: [...device.features].map(String).sort(),
    },
    lostReason: null,
    uncaptured: [],
  };
  device.lost.then((lost) => {
    handle.lostReason = `GPU device lost (${lost.reason}): ${lost.message}`;
  });
  device.addEventListener("uncapturederror", (event) => {
    const error = (event as GPUUncapturedErrorEvent).error;
    handle.uncaptured.push(error.message);
  });
  return handle;
}
