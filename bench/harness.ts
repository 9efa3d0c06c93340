/**
 * Timing utilities for the peer benchmarks: k iterations + one synchronisation per sample,
 * medians with min–max, interleaved sampling of several implementations, GFLOP/s and markdown output.
 *
 * Nothing is subtracted: a sample is (time of k iterations + one readback) / k, so per-iteration
 * numbers include dispatch recording, submission and a k-th of one GPU round trip.
 */

/** Median, minimum and maximum of the per-iteration samples, in milliseconds. */
export interface Stats {
  /** Median per-iteration time (ms). */
  median: number;
  /** Fastest sample (ms). */
  min: number;
  /** Slowest sample (ms). */
  max: number;
  /** The per-iteration samples (ms), in the order taken. */
  samples: number[];
}

/** How to time one function. */
export interface TimeOptions {
  /** Untimed calls before sampling (pipeline compilation, buffer pools); followed by one sync. */
  warmup?: number;
  /** Number of samples. */
  iters?: number;
  /** Calls per sample (k): one sample times k calls and then one `sync`. */
  inner?: number;
  /** Waits until the work of every call so far has finished (a readback of a scalar). */
  sync?: () => Promise<void>;
}

/** A benchmarked operation: `step` records one iteration, `sync` waits for all of them. */
export interface BenchCase {
  /** One iteration: records or runs the work, reads nothing back. */
  step: () => void | Promise<void>;
  /** Waits for all work issued by previous steps, by reading back a scalar. */
  sync: () => Promise<void>;
  /** Frees what the case allocated. */
  dispose: () => void;
}

/** Summary statistics of per-iteration samples. */
export function summarize(samples: number[]): Stats {
  const sorted = [...samples].sort((a, b) => a - b);
  const n = sorted.length;
  if (n === 0) return { median: NaN, min: NaN, max: NaN, samples: [] };
  const median = n % 2 ? sorted[(n - 1) / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
  return { median, min: sorted[0], max: sorted[n - 1], samples: [...samples] };
}

/** One sample: `inner` calls of `fn` and one `sync`, divided by `inner` (ms per call). */
export async function sample(
  fn: () => void | Promise<void>,
  inner: number,
  sync: () => Promise<void>,
): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < inner; i++) await fn();
  await sync();
  return (performance.now() - t0) / inner;
}

/**
 * Times `fn`: `warmup` calls and a sync, then `iters` samples of `inner` calls + one sync each.
 * Returns the median, min and max per-call time in ms.
 */
export async function timeIt(fn: () => void | Promise<void>, options: TimeOptions = {}): Promise<Stats> {
  const { warmup = 1, iters = 5, inner = 1, sync = () => Promise.resolve() } = options;
  for (let i = 0; i < warmup; i++) await fn();
  await sync();
  const samples: number[] = [];
  for (let i = 0; i < iters; i++) samples.push(await sample(fn, inner, sync));
  return summarize(samples);
}

/** Options of {@link timeInterleaved}. */
export interface InterleaveOptions {
  /** Untimed steps of each case before sampling (followed by its sync). */
  warmup?: number;
  /** Most samples per case. */
  iters?: number;
  /** Fewest samples per case (taken even past the budget). */
  minIters?: number;
  /** Steps per sample (k). */
  inner?: number;
  /** Stop adding samples (past `minIters`) once the sampling took this long, in ms. */
  budgetMs?: number;
}

/**
 * Times several cases with their samples interleaved (a0 b0 b1 a1 a2 b2 …), so slow drifts of the
 * machine (other processes on the shared cores) hit every case alike. Each case is warmed up and
 * synced before the first sample of any of them. A case that throws gets `null`, its error in
 * `errors`, and the others go on.
 */
export async function timeInterleaved(
  cases: BenchCase[],
  { warmup = 1, iters = 5, minIters = 2, inner = 1, budgetMs = Infinity }: InterleaveOptions = {},
): Promise<{ stats: (Stats | null)[]; errors: (string | null)[] }> {
  const errors: (string | null)[] = cases.map(() => null);
  for (const [j, c] of cases.entries()) {
    try {
      for (let i = 0; i < warmup; i++) await c.step();
      await c.sync();
    } catch (e) {
      errors[j] = errorNote(e);
    }
  }
  const samples: number[][] = cases.map(() => []);
  const start = performance.now();
  for (let i = 0; i < iters; i++) {
    if (i >= minIters && performance.now() - start > budgetMs) break;
    const order = cases.map((_, j) => j);
    if (i % 2 === 1) order.reverse(); // neither case always runs right after the other's sync
    for (const j of order) {
      if (errors[j]) continue;
      try {
        samples[j].push(await sample(cases[j].step, inner, cases[j].sync));
      } catch (e) {
        errors[j] = errorNote(e);
      }
    }
  }
  return { stats: samples.map((s, j) => errors[j] || s.length === 0 ? null : summarize(s)), errors };
}

/** GFLOP/s of `flop` floating-point operations in `ms` milliseconds. */
export function gflops(flop: number, ms: number): number {
  return flop / (ms * 1e6);
}

/** A time in ms with 3 significant digits (at least one decimal below 100). */
export function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return "–";
  if (ms >= 100) return ms.toFixed(0);
  if (ms >= 10) return ms.toFixed(1);
  return ms.toFixed(2);
}

/** `median (min–max)` in ms. */
export function fmtStats(s: Stats | null | undefined): string {
  if (!s || !Number.isFinite(s.median)) return "n/a";
  return `${fmtMs(s.median)} (${fmtMs(s.min)}–${fmtMs(s.max)})`;
}

/** GFLOP/s of a median time, formatted (empty when the FLOP count is unknown). */
export function fmtGflops(flop: number | undefined, s: Stats | null | undefined): string {
  if (!flop || !s || !Number.isFinite(s.median)) return "";
  const g = gflops(flop, s.median);
  return g >= 10 ? g.toFixed(1) : g.toFixed(2);
}

/** A ratio `a/b` of medians, formatted as `1.23×` (`n/a` when either is missing). */
export function fmtRatio(a: Stats | null | undefined, b: Stats | null | undefined): string {
  if (!a || !b || !Number.isFinite(a.median) || !Number.isFinite(b.median) || b.median === 0) return "n/a";
  return `${(a.median / b.median).toFixed(2)}×`;
}

/** A GitHub-flavoured markdown table. */
export function markdownTable(headers: string[], rows: string[][], align?: ("l" | "r")[]): string {
  const esc = (s: string) => s.replaceAll("|", "\\|");
  const line = (cells: string[]) => `| ${cells.map(esc).join(" | ")} |`;
  const rule = headers.map((_, i) => (align?.[i] ?? "l") === "r" ? "---:" : "---");
  return [line(headers), `| ${rule.join(" | ")} |`, ...rows.map(line)].join("\n");
}

/** What the benchmark ran on. */
export interface Environment {
  /** ISO date and time of the run. */
  date: string;
  /** Deno version. */
  deno: string;
  /** V8 version. */
  v8: string;
  /** Operating system. */
  os: string;
  /** CPU architecture. */
  arch: string;
  /** Logical CPUs seen by Deno. */
  cpus: number | null;
  /** The WebGPU adapter: description, vendor, architecture, fallback flag. */
  adapter: string;
}

/** Adapter information as WebGPU reports it, as one line. */
export async function adapterLine(): Promise<string> {
  const adapter = await navigator.gpu?.requestAdapter({ powerPreference: "high-performance" });
  if (!adapter) return "no WebGPU adapter";
  const info = adapter.info;
  const parts = [info.description || info.device, info.vendor, info.architecture].filter((s) => s);
  const fallback = (info as unknown as { isFallbackAdapter?: boolean }).isFallbackAdapter;
  return `${parts.join(", ")}${fallback ? " (fallback adapter)" : ""}`;
}

/** The date, runtime versions, OS, CPU count and adapter, for the report. */
export async function environment(): Promise<Environment> {
  let cpus: number | null = null;
  try {
    cpus = navigator.hardwareConcurrency ?? null;
  } catch {
    cpus = null;
  }
  return {
    date: new Date().toISOString(),
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    os: Deno.build.os,
    arch: Deno.build.arch,
    cpus,
    adapter: await adapterLine(),
  };
}

/** Arguments of a benchmark case that is timed by two or more implementations. */
export interface CaseResult {
  /** Case id, e.g. `matmul-1024`. */
  id: string;
  /** Group used by `--cases` (matmul, conv, resnet, supcon). */
  group: string;
  /** Human-readable label. */
  label: string;
  /** Floating-point operations per iteration (multiply-add = 2), when defined. */
  flop?: number;
  /** Per-implementation statistics (ms per iteration), or null when it did not run. */
  results: Record<string, Stats | null>;
  /** Why an implementation did not run. */
  notes: Record<string, string>;
}

/** A short description of an error for a table note. */
export function errorNote(e: unknown): string {
  const message = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  return message.split("\n")[0].slice(0, 160);
}

/** One convolution of the benchmark: NCHW input [n, cin, h, w], weight [cout, cin, k, k]. */
export interface ConvShape {
  /** E.g. `64→128 3×3 s2 @32²`. */
  label: string;
  /** Batch. */
  n: number;
  /** Input channels. */
  cin: number;
  /** Input height. */
  h: number;
  /** Input width. */
  w: number;
  /** Output channels. */
  cout: number;
  /** Kernel size (square). */
  k: number;
  /** Stride (both axes). */
  stride: number;
  /** Zero padding (every side). */
  pad: number;
}

/** Output height/width of a convolution. */
export function convOut(c: ConvShape): { ho: number; wo: number } {
  return {
    ho: Math.floor((c.h + 2 * c.pad - c.k) / c.stride) + 1,
    wo: Math.floor((c.w + 2 * c.pad - c.k) / c.stride) + 1,
  };
}

/** FLOP of one convolution pass (forward, grad input or grad weight: the same multiply-adds). */
export function convFlop(c: ConvShape): number {
  const { ho, wo } = convOut(c);
  return 2 * c.n * c.cout * ho * wo * c.cin * c.k * c.k;
}

/**
 * Every convolution of ResNet-18 for 32×32 inputs (3×3 stride-1 stem, no max-pool, BasicBlocks
 * [2, 2, 2, 2] with [w, 2w, 4w, 8w] channels, 1×1 stride-2 projection shortcuts), in network order,
 * with multiplicity (`count`) and without duplicates when `distinct`.
 */
export function resnet18Convs(n: number, width = 64): (ConvShape & { count: number })[] {
  const all: ConvShape[] = [];
  const conv = (cin: number, cout: number, h: number, k: number, stride: number) => {
    const pad = k === 3 ? 1 : 0;
    all.push({
      label: `${cin}→${cout} ${k}×${k} s${stride} @${h}²`,
      n,
      cin,
      h,
      w: h,
      cout,
      k,
      stride,
      pad,
    });
  };
  conv(3, width, 32, 3, 1);
  let cin = width;
  let h = 32;
  [width, 2 * width, 4 * width, 8 * width].forEach((cout, stage) => {
    for (let block = 0; block < 2; block++) {
      const stride = stage > 0 && block === 0 ? 2 : 1;
      conv(cin, cout, h, 3, stride);
      const hOut = stride === 2 ? h / 2 : h;
      conv(cout, cout, hOut, 3, 1);
      if (stride !== 1 || cin !== cout) conv(cin, cout, h, 1, stride);
      cin = cout;
      h = hOut;
    }
  });
  const distinct = new Map<string, ConvShape & { count: number }>();
  for (const c of all) {
    const d = distinct.get(c.label);
    if (d) d.count++;
    else distinct.set(c.label, { ...c, count: 1 });
  }
  return [...distinct.values()];
}

/**
 * FLOP of one ResNet-18 training step (forward + backward ≈ 3× the forward convolutions and the
 * linear classifier; batch-norm, ReLU, pooling and the optimiser are not counted). The stem's grad
 * input is not needed, so it counts 2× instead of 3×.
 */
export function resnet18StepFlop(n: number, width = 64, classes = 10): number {
  let flop = 0;
  resnet18Convs(n, width).forEach((c, i) => flop += c.count * convFlop(c) * (i === 0 ? 2 : 3));
  return flop + 3 * 2 * n * 8 * width * classes;
}

/**
 * FLOP of the SC loss forward + backward, counting the necessary products only: the Gram matrix
 * z·zᵀ (2b²d) and the gradient (A + Aᵀ)·z (2b²d); the b² elementwise work is not counted.
 */
export function supConFlop(b: number, d: number): number {
  return 2 * 2 * b * b * d;
}

/** The value after `--name` on the command line, or `fallback`. */
export function arg(name: string, fallback: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < Deno.args.length ? Deno.args[i + 1] : fallback;
}

/** `n` deterministic values in [−0.5, 0.5) from a linear congruential generator (benchmark inputs). */
export function seededValues(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 32 - 0.5;
  }
  return out;
}
