/**
 * How the autotuner times one candidate: GPU timestamps around each dispatch where the adapter has the
 * `timestamp-query` feature (through `Gpu.profile`), otherwise the wall clock around a synced batch of
 * calls, sized so that the ~11 ms round trip of a software adapter does not dominate.
 *
 * @module
 */
import type { Gpu } from "../gpu.ts";

/** Options of {@link timeCandidate}. */
export interface TimingOptions {
  /** Timed samples (median taken; default 3). */
  samples?: number;
  /** Wall-clock samples run at least this long (default 25 ms). */
  minSampleMs?: number;
  /** Stop after the first sample when it is slower than this (ms per call): a clear loser. */
  giveUpAboveMs?: number;
  /** Use timestamp queries when the device has them (default true). */
  timestamps?: boolean;
}

/** A candidate's time. */
export interface CandidateTime {
  /** Median milliseconds per call. */
  ms: number;
  /** How it was taken. */
  method: "timestamp" | "wall";
}

const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];

/**
 * Times `record` (records one call's dispatches; run on scratch buffers): one warm-up call (pipeline
 * compilation, checked for errors), then `samples` timed ones. Throws what the warm-up raised.
 */
export async function timeCandidate(
  g: Gpu,
  record: () => void,
  o: TimingOptions = {},
): Promise<CandidateTime> {
  const samples = o.samples ?? 3;
  await g.sync();
  const t0 = performance.now();
  record();
  await g.sync();
  const warm = performance.now() - t0;
  if ((o.timestamps ?? true) && g.device.features.has("timestamp-query")) {
    const times: number[] = [];
    g.profile = true;
    try {
      for (let s = 0; s < samples; s++) {
        record();
        const report = await g.profileReport();
        if (!report.timestamps || !(report.dispatchMs > 0)) break;
        times.push(report.dispatchMs);
        if (s === 0 && o.giveUpAboveMs !== undefined && times[0] > o.giveUpAboveMs) break;
      }
    } finally {
      g.profile = false;
    }
    if (times.length > 0) return { ms: median(times), method: "timestamp" };
  }
  // Wall clock: a batch of k calls per sync, k from the warm-up (which also compiled, so an upper bound).
  const k = Math.max(1, Math.min(64, Math.ceil((o.minSampleMs ?? 25) / Math.max(warm, 0.05))));
  const times: number[] = [];
  for (let s = 0; s < samples; s++) {
    const start = performance.now();
    for (let i = 0; i < k; i++) record();
    await g.sync();
    times.push((performance.now() - start) / k);
    if (s === 0 && o.giveUpAboveMs !== undefined && times[0] > o.giveUpAboveMs) break;
  }
  return { ms: median(times), method: "wall" };
}
