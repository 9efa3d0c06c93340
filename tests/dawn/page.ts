/**
 * The page side of the Dawn runner (`tests/dawn/run.ts`): imports the portable test files, which register
 * their cases with `tests/harness.ts`, and exposes `globalThis.dawn` for the runner to drive one case at a
 * time. Bundled for the browser by the runner; `node:assert/strict` is left external and mapped by the
 * page's import map to `tests/dawn/assert_strict.ts`.
 *
 * Deno-only test files (they read or write files, start processes or serve HTTP) are not imported here:
 * data, experiments_*, reproduce, section5_eval, train, theory_cli, url_import; theory_test is CPU-only.
 */
import "../engine_core_test.ts";
import "../ops_elementwise_test.ts";
import "../ops_reduce_test.ts";
import "../ops_shape_test.ts";
import "../ops_matmul_test.ts";
import "../ops_conv_test.ts";
import "../ops_batchnorm_test.ts";
import "../ops_loss_test.ts";
import "../optim_test.ts";
import "../augment_test.ts";
import "../models_test.ts";
import "../training_test.ts";
import "../memory_test.ts";
import "../perf_invariants_test.ts";
import "../gemm_candidates_test.ts";
import "../gemm_register_test.ts";
import "../tuning_test.ts";
import { registeredTests } from "../harness.ts";
import { gpu, initDevice } from "../../engine/gpu.ts";

/** What the page tells the runner about its adapter and the kernels in force. */
export interface PageInfo {
  /** The raw `GPUAdapterInfo` fields Chromium reports, and whether it is a fallback adapter. */
  adapter: { vendor: string; architecture: string; device: string; description: string; isFallback: boolean };
  /** The engine's adapter report name. */
  engineName: string;
  /** Device features the engine enabled. */
  features: string[];
  /** The kernel family the engine generates (`gpu().kernels`). */
  kernels: string;
  /** The browser's user agent. */
  userAgent: string;
}

/** The outcome of one case. */
export interface CaseResult {
  ok: boolean;
  ms: number;
  ignored?: boolean;
  error?: string;
  /** The device was lost (the runner reloads the page before the next case). */
  deviceLost?: boolean;
}

/** The runner's handle on the page (`globalThis.dawn`). */
export interface DawnPage {
  init(kernels: "auto" | "software" | "gpu"): Promise<PageInfo>;
  list(): { name: string; once: boolean }[];
  run(index: number): Promise<CaseResult>;
}

function describe(e: unknown): string {
  if (e instanceof Error) {
    const frames = (e.stack ?? "").split("\n").filter((l) => /^\s+at /.test(l)).slice(0, 3).join("\n");
    return `${e.name}: ${e.message}${frames ? `\n${frames}` : ""}`;
  }
  return String(e);
}

const dawn: DawnPage = {
  async init(kernels) {
    const gpuApi = (navigator as Navigator & { gpu?: GPU }).gpu;
    if (!gpuApi) throw new Error("navigator.gpu is missing: WebGPU is not enabled in this browser");
    const adapter = await gpuApi.requestAdapter();
    if (!adapter) throw new Error("navigator.gpu.requestAdapter() returned null: no WebGPU adapter");
    const info = adapter.info as GPUAdapterInfo & { isFallbackAdapter?: boolean };
    const g = await initDevice({ kernels });
    g.poison = true;
    return {
      adapter: {
        vendor: info.vendor,
        architecture: info.architecture,
        device: info.device,
        description: info.description,
        isFallback: Boolean(info.isFallbackAdapter),
      },
      engineName: g.report.name,
      features: g.report.features,
      kernels: String((g as unknown as { kernels?: string }).kernels ?? "(engine has no kernels switch)"),
      userAgent: navigator.userAgent,
    };
  },
  list() {
    return registeredTests().map((t) => ({ name: t.name, once: t.dawn === "once" }));
  },
  async run(index) {
    const t = registeredTests()[index];
    if (t.ignore) return { ok: true, ms: 0, ignored: true };
    const start = performance.now();
    try {
      await t.fn();
      return { ok: true, ms: performance.now() - start };
    } catch (e) {
      const ms = performance.now() - start;
      let deviceLost = false;
      try {
        gpu().checkAlive();
      } catch {
        deviceLost = true;
      }
      return { ok: false, ms, error: describe(e), deviceLost };
    }
  },
};

(globalThis as { dawn?: DawnPage }).dawn = dawn;
