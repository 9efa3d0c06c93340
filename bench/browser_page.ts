/**
 * The page side of `bench/browser.ts`: the cases of `bench/browser_cases.ts` behind `globalThis.bench`.
 *
 * @module
 */
import { initDevice } from "../engine/gpu.ts";
import { benchMatmul1024, benchResNetStep, type CaseTiming } from "./browser_cases.ts";

/** What `bench/browser.ts` calls in the page. */
export interface BenchPage {
  /** Initialises the device with a kernel strategy; returns the adapter as the engine reports it. */
  init(
    kernels: "auto" | "software" | "gpu",
  ): Promise<{ adapter: string; kernels: string; userAgent: string }>;
  matmul(samples: number, calls: number): Promise<CaseTiming>;
  step(batch: number, steps: number): Promise<CaseTiming>;
}

const bench: BenchPage = {
  async init(kernels) {
    const g = await initDevice({ kernels });
    const info = (await navigator.gpu.requestAdapter())?.info;
    const adapter = [info?.vendor, info?.architecture, info?.description].filter(Boolean).join(" ");
    return {
      adapter: `${adapter}${g.report.isFallback ? " (fallback)" : ""}`,
      kernels: g.kernels,
      userAgent: navigator.userAgent,
    };
  },
  matmul: (samples, calls) => benchMatmul1024(samples, calls),
  step: (batch, steps) => benchResNetStep(batch, steps),
};

(globalThis as { bench?: BenchPage }).bench = bench;
