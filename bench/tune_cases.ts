/**
 * The autotuner's proof, as code that runs in Deno and in a page alike (engine code only, nothing of a
 * runtime): `deno task tune`, `bench/profile_step.ts --tuning-compare` and `bench/browser.ts --only
 * tune,compare` call it.
 *
 * - {@link tuneResNetStep}: records one ResNet-18 step without running it (`gpu().dryRun`), which queues
 *   every GEMM the step dispatches, counting how often each GEMM site is dispatched per step; then lets the
 *   tuner time the candidates (`Tuner.measurePending`: heuristic first, then the others, in this process).
 *   Optionally re-times the heuristic against the tuned choice of every GEMM whose choice changed,
 *   interleaved, on the wall clock (an independent check of the tuner's timings, see {@link verifySites}).
 * - {@link byLayer} / {@link byLayerTable}: the decisions aggregated per ResNet-18 layer and pass (conv
 *   forward, grad input, grad weight), weighted by dispatches per step.
 * - {@link compareTuningSteps}: the training step with the tuner's mode "off" and "cached" alternated.
 * - {@link recordingOverhead}: host time to record a step (dryRun) in modes "off" and "cached" alternated.
 *
 * @module
 */
import { type Gpu, gpu } from "../engine/gpu.ts";
import "../engine/autograd.ts";
import type { TuneDecision, TuneSite } from "../engine/tune/tuner.ts";
import type { TuningStore } from "../engine/tune/store.ts";
import { resnetTrainStep } from "./resnet_step.ts";

/** One tuning site of the step (a GEMM's tiling, or a convolution pass's route) and what was decided. */
export interface SiteRow {
  /** The tuner's cache key. */
  key: string;
  /** `gemm` (a GEMM's tiling) or `route` (a convolution pass's route: channels-last or im2col). */
  kind: "gemm" | "route";
  /** The op and layer (e.g. `conv2d.gradWeight 64→64 3×3 s1 32×32`); for a route, its label. */
  name: string;
  /** The tuner's label (name and sizes). */
  label: string;
  /** Dispatches (tunings asked) of this site per step on the heuristic's path, and on the tuned path. */
  heuristicCount: number;
  tunedCount: number;
  heuristic: string;
  choice: string;
  source: TuneDecision["source"] | "unmeasured";
  /** The tuner's times (ms per call) of the heuristic and of the choice; null where not timed. */
  heuristicMs: number | null;
  tunedMs: number | null;
  /** Candidates timed (of `candidates`). */
  timed: number;
  candidates: number;
  method: string;
  /** The interleaved wall-clock re-timing (choice ≠ heuristic only). */
  verify?: VerifyTimes;
}

/** Re-timed heuristic and choice of one site. */
export interface VerifyTimes {
  /** Median ms per call (wall clock, k calls per synced sample, nothing subtracted). */
  heuristicMs: number;
  tunedMs: number;
  /** Calls per sample, samples per candidate. */
  k: number;
  reps: number;
}

/** Everything {@link tuneResNetStep} measured. */
export interface TuneRun {
  batch: number;
  width: number;
  /** GEMM dispatches per step on the heuristic's path and on the tuned path. */
  heuristicDispatches: number;
  tunedDispatches: number;
  sites: SiteRow[];
  /** Sites measured now (over all rounds), taken from the cache, and left unmeasured (`limit`). */
  measured: number;
  /** Measurements of a site measured before in this run (queued again while a route was timed). */
  remeasured: number;
  cached: number;
  unmeasured: number;
  /** Record-and-measure rounds (a route changed by tuning brings GEMMs of its own, measured next round). */
  rounds: number;
  /** Wall seconds of recording the step (dryRun, all rounds), of `measurePending`, and of the re-timing. */
  recordSeconds: number;
  measureSeconds: number;
  verifySeconds: number;
  /** The tuner's time cap per site (ms) and timing method ("timestamp" or "wall"). */
  capMs: number;
  method: string;
  /** The tuner's decisions (labels as the tuner prints them). */
  decisions: TuneDecision[];
  warning: string | null;
}

/** Options of {@link tuneResNetStep}. */
export interface TuneOptions {
  batch: number;
  width?: number;
  /** Measure every site again, ignoring the cache's winners. */
  fresh?: boolean;
  /** Per-site time cap (default: the tuner's, 3000 ms). */
  capMs?: number;
  /** false: the tuner times with the wall clock even where timestamp queries exist. */
  timestamps?: boolean;
  /** Where the cache is kept (default: the tuner's store as `initDevice` opened it). */
  store?: TuningStore;
  /** Measure only the first `limit` sites the cache lacks (a rehearsal: one round); the others stay queued. */
  limit?: number;
  /** Re-time heuristic against choice this many samples each (0: no re-timing). */
  verifyReps?: number;
  /** Progress lines. */
  log?: (line: string) => void;
}

/** What separates the label the tuner sees from the site's key (so that decisions name their site). */
const KEY_MARK = "\u0000";
const cleanLabel = (label: string) => label.split(KEY_MARK)[0];
const keyOf = (label: string) => label.split(KEY_MARK)[1];

type Uses = Map<string, { site: TuneSite; count: number }>;

/**
 * Wraps the tuner's `choose` while `body` runs: it hands the tuner each site with its key appended to its
 * label, so that every decision names its site (also those of GEMMs that a route's timing dispatches), and
 * while a recording is under way (`recording.uses`) counts the sites asked about, in first-use order. With
 * `recording.heuristicPath`, the op is told the heuristic whatever the tuner decided (the step as tuning
 * "off" records it), while the tuner still queues or looks up each site.
 */
async function withMarkedSites<T>(
  g: Gpu,
  recording: { uses: Uses | null; heuristicPath: boolean },
  body: () => Promise<T>,
): Promise<T> {
  const tuner = g.tuner;
  const original = tuner.choose;
  tuner.choose = (site: TuneSite) => {
    const uses = recording.uses;
    if (uses) {
      const use = uses.get(site.key);
      if (use) use.count++;
      else uses.set(site.key, { site, count: 1 });
    }
    const marked = site.label.includes(KEY_MARK)
      ? site
      : Object.create(site, { label: { value: `${site.label}${KEY_MARK}${site.key}` } });
    const choice = original.call(tuner, marked);
    return uses && recording.heuristicPath ? site.heuristic : choice;
  };
  try {
    return await body();
  } finally {
    tuner.choose = original;
  }
}

function nameOf(key: string, label: string): string {
  return key.startsWith("gemm|") ? key.split("|")[1] : label;
}

/**
 * Tunes the GEMMs (and convolution routes) of one ResNet-18 (CIFAR, 32×32) training step at `batch` on
 * the initialised device, as the training loop's `measure` mode would over its first steps:
 *
 * 1. records the step as tuning "off" runs it (dryRun; each site's heuristic), which queues every site of
 *    that path, and lets the tuner measure them (`measurePending`);
 * 2. records the step again with the tuner's choices in force: a route the tuner changed dispatches GEMMs
 *    of its own, queued and measured now; repeated until a recording queues nothing (at most 4 rounds).
 *
 * Optionally re-times each changed site (see {@link verifySites}). Leaves the tuner in mode "measure".
 */
export async function tuneResNetStep(o: TuneOptions): Promise<TuneRun> {
  const g = gpu();
  if (o.store || g.tuner.mode !== "measure") await g.tuner.open("measure", o.store ?? g.tuner.store);
  g.tuner.remeasure = o.fresh ?? false;
  if (o.capMs !== undefined) g.tuner.capMs = o.capMs;
  if (o.timestamps === false) g.tuner.timing = { ...g.tuner.timing, timestamps: false };
  const recording: { uses: Uses | null; heuristicPath: boolean } = { uses: null, heuristicPath: false };
  return await withMarkedSites(g, recording, () => tuneMarked(o, g, recording));
}

async function tuneMarked(
  o: TuneOptions,
  g: Gpu,
  recording: { uses: Uses | null; heuristicPath: boolean },
): Promise<TuneRun> {
  const log = o.log ?? (() => {});
  const width = o.width ?? 1;
  const model = resnetTrainStep(o.batch, width);
  let recordSeconds = 0;
  let measureSeconds = 0;
  const record = async (heuristicPath: boolean) => {
    const t = performance.now();
    const uses: Uses = new Map();
    Object.assign(recording, { uses, heuristicPath });
    g.dryRun = true;
    try {
      model.step();
      g.flush();
    } finally {
      g.dryRun = false;
      recording.uses = null;
    }
    await g.sync();
    recordSeconds += (performance.now() - t) / 1000;
    return uses;
  };
  const sum = (uses: Map<string, { count: number }>) => [...uses.values()].reduce((s, u) => s + u.count, 0);
  const first = await record(true);
  const cachedAtStart = g.tuner.decisions().length;
  log(
    `ResNet-18 ×${width} batch ${o.batch}: ${first.size} tuning sites (${sum(first)} per step as the ` +
      `heuristic runs it), ${g.tuner.pendingCount} to measure, ${cachedAtStart} cached`,
  );
  const measured: TuneDecision[] = [];
  let last = first;
  let rounds = 0;
  let unmeasured = 0;
  while (g.tuner.pendingCount > 0 && rounds < 4) {
    rounds++;
    const n = Math.min(g.tuner.pendingCount, o.limit ?? Infinity);
    const t = performance.now();
    let i = 0;
    measured.push(
      ...await g.tuner.measurePending((d) => {
        const ms = d.entry?.ms ?? {};
        log(
          `[${rounds}: ${++i}/${n}] ${cleanLabel(d.label)}: ${fmtMs(ms[d.heuristic])} → ${d.choice} ` +
            fmtMs(ms[d.choice]),
        );
      }, n),
    );
    measureSeconds += (performance.now() - t) / 1000;
    if (o.limit !== undefined && Number.isFinite(o.limit)) {
      unmeasured = g.tuner.pendingCount;
      break;
    }
    last = await record(false);
    if (g.tuner.pendingCount > 0) {
      log(`round ${rounds + 1}: ${g.tuner.pendingCount} sites queued by the tuned step`);
    }
  }
  if (rounds === 0) last = await record(false);
  model.dispose();
  await g.sync();

  const decided = new Map<string, TuneDecision>();
  for (const d of g.tuner.decisions()) {
    const key = keyOf(d.label);
    if (key) decided.set(key, d);
  }
  const keys = [...first.keys(), ...[...last.keys()].filter((k) => !first.has(k))];
  const sites: SiteRow[] = keys.map((key) => {
    const site = (first.get(key) ?? last.get(key))!.site;
    const d = decided.get(key);
    const ms = d?.entry?.ms ?? {};
    const heuristic = d?.heuristic ?? site.heuristic;
    const choice = d?.choice ?? heuristic;
    return {
      key,
      kind: key.startsWith("gemm|") ? "gemm" : "route",
      name: nameOf(key, site.label),
      label: site.label,
      heuristicCount: first.get(key)?.count ?? 0,
      tunedCount: last.get(key)?.count ?? 0,
      heuristic,
      choice,
      source: d?.source ?? "unmeasured",
      heuristicMs: ms[heuristic] ?? null,
      tunedMs: ms[choice] ?? null,
      timed: Object.values(ms).filter((t) => t !== null).length,
      candidates: site.candidates.length,
      method: d?.entry?.method ?? "—",
    };
  });
  let verifySeconds = 0;
  if ((o.verifyReps ?? 0) > 0) {
    const t2 = performance.now();
    const changed = sites.filter((s) => s.choice !== s.heuristic && s.tunedCount > 0);
    log(`re-timing ${changed.length} changed sites, heuristic against choice, interleaved, wall clock`);
    for (const row of changed) {
      const site = (last.get(row.key) ?? first.get(row.key))!.site;
      row.verify = await verifySites(g, site, row.heuristic, row.choice, o.verifyReps!);
      log(
        `  ${row.label}: ${row.heuristic} ${fmtMs(row.verify.heuristicMs)}, ${row.choice} ` +
          `${fmtMs(row.verify.tunedMs)} (k ${row.verify.k})`,
      );
    }
    verifySeconds = (performance.now() - t2) / 1000;
  }
  const method = measured[0]?.entry?.method ?? sites.find((s) => s.method !== "—")?.method ?? "—";
  const gemmSum = (f: (s: SiteRow) => number) =>
    sites.filter((s) => s.kind === "gemm").reduce((a, s) => a + f(s), 0);
  return {
    batch: o.batch,
    width,
    heuristicDispatches: gemmSum((s) => s.heuristicCount),
    tunedDispatches: gemmSum((s) => s.tunedCount),
    sites,
    measured: measured.length,
    remeasured: measured.length - new Set(measured.map((d) => keyOf(d.label) ?? d.label)).size,
    cached: cachedAtStart,
    unmeasured,
    rounds,
    recordSeconds,
    measureSeconds,
    verifySeconds,
    capMs: g.tuner.capMs,
    method,
    decisions: g.tuner.decisions().map((d) => ({ ...d, label: cleanLabel(d.label) })),
    warning: g.tuner.warning,
  };
}

const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];

/**
 * Times `heuristic` and `choice` of `site` on the wall clock, interleaved (H T, T H, H T, …), `reps`
 * samples each of k calls and one sync (k from one synced call of the heuristic, so that a sample runs at
 * least 150 ms; the same k for both), median per call. Independent of the tuner's method (timestamps on
 * llvmpipe) and of its order (heuristic first): a check that a changed choice is really faster.
 */
export async function verifySites(
  g: Gpu,
  site: TuneSite,
  heuristic: string,
  choice: string,
  reps: number,
  minSampleMs = 150,
): Promise<VerifyTimes> {
  const runner = site.prepare();
  try {
    await g.sync();
    for (const c of [heuristic, choice]) runner.record(c); // compiled already; warm both
    await g.sync();
    let t = performance.now();
    runner.record(heuristic);
    await g.sync();
    const one = performance.now() - t;
    const k = Math.max(1, Math.min(64, Math.ceil(minSampleMs / Math.max(one, 0.05))));
    const times: Record<string, number[]> = { [heuristic]: [], [choice]: [] };
    for (let r = 0; r < reps; r++) {
      for (const c of r % 2 ? [choice, heuristic] : [heuristic, choice]) {
        t = performance.now();
        for (let i = 0; i < k; i++) runner.record(c);
        await g.sync();
        times[c].push((performance.now() - t) / k);
      }
    }
    return { heuristicMs: median(times[heuristic]), tunedMs: median(times[choice]), k, reps };
  } finally {
    runner.dispose();
  }
}

/** One layer and pass of the by-layer table. */
export interface LayerPass {
  /** e.g. `layer2.0 64→128 3×3 s2` (from the shape label in the dispatch names). */
  layer: string;
  /** conv forward, grad input or grad weight (classifier: forward, grad input, grad weight). */
  pass: "forward" | "grad input" | "grad weight";
  /** GEMM sites, and their dispatches per step, on the tuned path. */
  sites: number;
  dispatches: number;
  /**
   * Per step: Σ dispatches × ms per call of the heuristic's kernels on the heuristic's path, and of the
   * tuned kernels on the tuned path (the tuner's timings; GEMMs only, not the copies around them).
   */
  heuristicMs: number;
  tunedMs: number;
  /** GEMM sites on the tuned path whose kernel differs from the heuristic's. */
  changed: number;
  /** The pass's route (channels-last or im2col): the heuristic's, the tuner's, and their whole-pass times. */
  route: { heuristic: string; choice: string; heuristicMs: number | null; tunedMs: number | null } | null;
  /**
   * The changed sites re-timed (wall clock, interleaved): Σ dispatches × ms of heuristic and choice; a
   * changed route counts its whole-pass times. null without re-timing.
   */
  verifyHeuristicMs: number | null;
  verifyTunedMs: number | null;
  /** A GEMM site in this pass had no time for the heuristic or its choice (then the sums leave it out). */
  incomplete: boolean;
}

const PASS_ORDER = ["forward", "grad input", "grad weight"];

function passOf(op: string): LayerPass["pass"] | null {
  if (op.startsWith("conv2d.forward") || op === "linear") return "forward";
  if (op.startsWith("conv2d.gradInput") || op === "matmulNN") return "grad input";
  if (op.startsWith("conv2d.gradWeight") || op === "linear.gradWeight") return "grad weight";
  return null;
}

/**
 * A ResNet-18 name for a convolution's shape label `C→O KH×KW sS H×W`: the stem (3 input channels), a
 * stage's shortcut (1×1), its first, strided 3×3 (`layerN.0`), or its other 3×3s (`layerN`, with the
 * input size); the stage from O relative to the stem's output channels `base`.
 */
export function layerName(shape: string, base: number): string {
  const m = /^(\d+)→(\d+) (\d+)×(\d+) s(\d+) (\d+)×(\d+)$/.exec(shape);
  if (!m) return shape;
  const [C, O, KH, S, H] = [+m[1], +m[2], +m[3], +m[5], +m[6]];
  const stage = Math.round(Math.log2(O / base)) + 1;
  const short = `${C}→${O} ${KH}×${KH}${S > 1 ? ` s${S}` : ""}`;
  if (C === 3) return `stem ${short}`;
  if (KH === 1) return `layer${stage} shortcut ${short}`;
  if (S > 1) return `layer${stage}.0 ${short}`;
  return `layer${stage} ${short} (${H}×${H})`;
}

/** The op (first word) and the convolution shape label `C→O KH×KW sS H×W` of a site, when it has one. */
function opAndShape(s: SiteRow): { op: string; shape: string | null } {
  const space = s.name.indexOf(" ");
  const op = space < 0 ? s.name : s.name.slice(0, space);
  const rest = space < 0 ? "" : s.name.slice(space + 1);
  if (!op.startsWith("conv2d.")) return { op, shape: null };
  const route = /^route (\d+→\d+ \d+×\d+ s\d+) p\d+ (\d+×\d+)/.exec(rest);
  return { op, shape: route ? `${route[1]} ${route[2]}` : rest };
}

/** The sites of a run aggregated per layer and pass, in the order the step first dispatches them. */
export function byLayer(sites: SiteRow[]): LayerPass[] {
  const shapes = sites.map((s) => opAndShape(s).shape).filter((s): s is string => !!s);
  const base = Math.min(...shapes.map((s) => Number(/→(\d+)/.exec(s)?.[1] ?? Infinity)));
  const rows = new Map<string, LayerPass>();
  const layerOrder: string[] = [];
  const routeVerified = new Set<string>();
  // Routes first: a pass whose route was re-timed is re-timed as a whole.
  const ordered = [...sites.filter((s) => s.kind === "route"), ...sites.filter((s) => s.kind !== "route")];
  for (const s of sites) layerOrderOf(s);
  function layerOrderOf(s: SiteRow) {
    const { op, shape } = opAndShape(s);
    if (!passOf(op)) return;
    const layer = shape ? layerName(shape, base) : "classifier (linear)";
    if (!layerOrder.includes(layer)) layerOrder.push(layer);
  }
  for (const s of ordered) {
    const { op, shape } = opAndShape(s);
    const pass = passOf(op);
    if (!pass) continue;
    const layer = shape ? layerName(shape, base) : "classifier (linear)";
    const id = `${layer}|${pass}`;
    const r: LayerPass = rows.get(id) ?? {
      layer,
      pass,
      sites: 0,
      dispatches: 0,
      heuristicMs: 0,
      tunedMs: 0,
      changed: 0,
      route: null,
      verifyHeuristicMs: null,
      verifyTunedMs: null,
      incomplete: false,
    };
    rows.set(id, r);
    if (s.kind === "route") {
      r.route = { heuristic: s.heuristic, choice: s.choice, heuristicMs: s.heuristicMs, tunedMs: s.tunedMs };
      if (s.verify) {
        // A changed route's re-timing is of the whole pass (its GEMMs included): it stands for the pass.
        r.verifyHeuristicMs = s.tunedCount * s.verify.heuristicMs;
        r.verifyTunedMs = s.tunedCount * s.verify.tunedMs;
        routeVerified.add(id);
      }
      continue;
    }
    if (s.verify && !routeVerified.has(id)) {
      r.verifyHeuristicMs = (r.verifyHeuristicMs ?? 0) + s.tunedCount * s.verify.heuristicMs;
      r.verifyTunedMs = (r.verifyTunedMs ?? 0) + s.tunedCount * s.verify.tunedMs;
    }
    if (s.tunedCount > 0) {
      r.sites++;
      r.dispatches += s.tunedCount;
      if (s.choice !== s.heuristic) r.changed++;
    }
    const h = s.heuristicCount > 0 ? s.heuristicMs : 0;
    const t = s.tunedCount > 0 ? s.tunedMs : 0;
    if (h === null || t === null) r.incomplete = true;
    else {
      r.heuristicMs += s.heuristicCount * h;
      r.tunedMs += s.tunedCount * t;
    }
  }
  return [...rows.values()].sort((a, b) =>
    layerOrder.indexOf(a.layer) - layerOrder.indexOf(b.layer) ||
    PASS_ORDER.indexOf(a.pass) - PASS_ORDER.indexOf(b.pass)
  );
}

/** `ms` as printed in the tables: three significant digits at least, "—" when absent. */
export function fmtMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return "—";
  return ms >= 100 ? ms.toFixed(1) : ms >= 10 ? ms.toFixed(2) : ms.toFixed(3);
}

const ratio = (h: number | null, t: number | null) =>
  h !== null && t !== null && t > 0 ? `${(h / t).toFixed(2)}×` : "—";

function table(headers: string[], rows: string[][], right: boolean[]): string {
  const line = (cells: string[]) => `| ${cells.map((c) => c.replaceAll("|", "\\|")).join(" | ")} |`;
  const rule = `| ${right.map((r) => r ? "---:" : "---").join(" | ")} |`;
  return [line(headers), rule, ...rows.map(line)].join("\n");
}

function routeCell(r: LayerPass): string {
  if (!r.route) return "";
  const { heuristic, choice, heuristicMs, tunedMs } = r.route;
  return choice === heuristic
    ? `${heuristic} ${fmtMs(heuristicMs)}`
    : `${heuristic} ${fmtMs(heuristicMs)} → ${choice} ${fmtMs(tunedMs)}`;
}

/**
 * The by-layer table of a run: per layer and pass, the tuned path's GEMM sites (dispatches per step), the
 * heuristic's and the tuned kernels' GEMM time per step (the tuner's timings × dispatches), their ratio,
 * how many GEMMs changed, the route (whole-pass times), and (where re-timed) the changed sites'
 * interleaved wall-clock times; then a total line and the passes where the tuned time is above the
 * heuristic's.
 */
export function byLayerTable(run: TuneRun): string {
  const rows = byLayer(run.sites);
  const verified = run.sites.some((s) => s.verify);
  const headers = [
    "layer",
    "pass",
    "GEMMs (per step)",
    "heuristic ms",
    "tuned ms",
    "heuristic/tuned",
    "changed",
    "route ms (pass)",
  ];
  if (verified) headers.push("re-timed changed: heuristic ms", "tuned ms", "heuristic/tuned");
  const body = rows.map((r) => {
    const star = r.incomplete ? "*" : "";
    const cells = [
      r.layer,
      r.pass,
      `${r.sites} (${r.dispatches})`,
      fmtMs(r.heuristicMs) + star,
      fmtMs(r.tunedMs) + star,
      ratio(r.heuristicMs, r.tunedMs),
      `${r.changed}`,
      routeCell(r),
    ];
    if (verified) {
      cells.push(
        fmtMs(r.verifyHeuristicMs),
        fmtMs(r.verifyTunedMs),
        ratio(r.verifyHeuristicMs, r.verifyTunedMs),
      );
    }
    return cells;
  });
  const sum = (f: (r: LayerPass) => number | null) => rows.reduce((s, r) => s + (f(r) ?? 0), 0);
  const h = sum((r) => r.heuristicMs);
  const t = sum((r) => r.tunedMs);
  const total = [
    "all GEMMs of the step",
    "",
    `${sum((r) => r.sites)} (${sum((r) => r.dispatches)})`,
    fmtMs(h),
    fmtMs(t),
    ratio(h, t),
    `${sum((r) => r.changed)}`,
    `${rows.filter((r) => r.route && r.route.choice !== r.route.heuristic).length} of ${
      rows.filter((r) => r.route).length
    } changed`,
  ];
  if (verified) {
    const vh = sum((r) => r.verifyHeuristicMs);
    const vt = sum((r) => r.verifyTunedMs);
    total.push(fmtMs(vh), fmtMs(vt), ratio(vh, vt));
  }
  body.push(total);
  const out = [table(headers, body, headers.map((_, i) => i >= 2 && i !== 7))];
  if (rows.some((r) => r.incomplete)) {
    out.push("* a GEMM without a time for the heuristic or the choice is left out");
  }
  // A pass whose route changed is judged by the route's whole-pass times (its GEMM sums leave out the
  // channels-last copy that the other route saves); any other pass by its GEMMs.
  const passTimes = (r: LayerPass): [number, number] =>
    r.route && r.route.choice !== r.route.heuristic && r.route.heuristicMs !== null &&
      r.route.tunedMs !== null
      ? [r.route.heuristicMs, r.route.tunedMs]
      : [r.heuristicMs, r.tunedMs];
  const slower = rows.filter((r) => passTimes(r)[1] > passTimes(r)[0] * 1.0000001);
  const slowerVerified = rows.filter((r) =>
    r.verifyHeuristicMs !== null && r.verifyTunedMs !== null && r.verifyTunedMs > r.verifyHeuristicMs
  );
  const list = (rs: LayerPass[], f: (r: LayerPass) => string) => rs.length ? rs.map(f).join("; ") : "none";
  out.push(
    `passes with tuned > heuristic: ${
      list(slower, (r) => `${r.layer} ${r.pass} (${fmtMs(passTimes(r)[1])} vs ${fmtMs(passTimes(r)[0])} ms)`)
    }` +
      (verified
        ? `; re-timed: ${
          list(slowerVerified, (r) =>
            `${r.layer} ${r.pass} (${fmtMs(r.verifyTunedMs)} vs ${fmtMs(r.verifyHeuristicMs)} ms)`)
        }`
        : ""),
  );
  return out.join("\n");
}

/** Per-site table (one row per tuning site), as `deno task tune` prints it. */
export function siteTable(run: TuneRun): string {
  const verified = run.sites.some((s) => s.verify);
  const headers = [
    "site",
    "×/step (heuristic, tuned)",
    "heuristic",
    "ms",
    "tuned",
    "ms",
    "speed-up",
    "timed",
    "source",
  ];
  if (verified) headers.push("re-timed heuristic ms", "tuned ms");
  const rows = run.sites.map((s) => {
    const cells = [
      s.label,
      `${s.heuristicCount}, ${s.tunedCount}`,
      s.heuristic,
      fmtMs(s.heuristicMs),
      s.choice === s.heuristic ? "(same)" : s.choice,
      fmtMs(s.tunedMs),
      ratio(s.heuristicMs, s.tunedMs),
      `${s.timed}/${s.candidates}`,
      s.source,
    ];
    if (verified) cells.push(fmtMs(s.verify?.heuristicMs), fmtMs(s.verify?.tunedMs));
    return cells;
  });
  return table(headers, rows, headers.map((_, i) => [1, 3, 5, 6, 7, 9, 10].includes(i)));
}

/** The step with tuning off and on (see {@link compareTuningSteps}). */
export interface TuningCompare {
  batch: number;
  width: number;
  /** Per-step wall ms (each step synced) in mode "off" and "cached", in the order taken. */
  offMs: number[];
  cachedMs: number[];
  offMedianMs: number;
  cachedMedianMs: number;
  /** cached / off (below 1: tuning is faster). */
  ratio: number;
  /** Warm-up wall ms per mode (pipeline compilation of each mode's kernels). */
  warmupMs: { off: number; cached: number };
  /** GEMM sites the tuner chose a non-heuristic kernel for. */
  changedSites: number;
}

/**
 * One ResNet-18 training step at `batch` with the tuner's mode "off" (the heuristic) and "cached" (the
 * decisions made by a `measure` pass before, e.g. {@link tuneResNetStep}, or a cache file), alternated in
 * one process: `warmup` steps of each mode first (compiling both modes' kernels), then `pairs` pairs in
 * ABBA order, each step synced; medians.
 */
export async function compareTuningSteps(
  batch: number,
  width = 1,
  pairs = 5,
  warmup = 2,
  log: (line: string) => void = () => {},
): Promise<TuningCompare> {
  const g = gpu();
  const changedSites = g.tuner.decisions().filter((d) => d.choice !== d.heuristic).length;
  const { step, dispose } = resnetTrainStep(batch, width);
  const run = async (mode: "off" | "cached") => {
    g.tuner.mode = mode;
    const t = performance.now();
    step();
    await g.sync();
    return performance.now() - t;
  };
  const warmupMs = { off: 0, cached: 0 };
  try {
    for (const mode of ["off", "cached"] as const) {
      for (let i = 0; i < warmup; i++) warmupMs[mode] += await run(mode);
    }
    log(
      `warm-up: off ${warmupMs.off.toFixed(0)} ms, cached ${
        warmupMs.cached.toFixed(0)
      } ms (${warmup} steps each)`,
    );
    const offMs: number[] = [];
    const cachedMs: number[] = [];
    for (let p = 0; p < pairs; p++) {
      for (const mode of p % 2 ? ["cached", "off"] as const : ["off", "cached"] as const) {
        const ms = await run(mode);
        (mode === "off" ? offMs : cachedMs).push(ms);
        log(`  pair ${p + 1}: ${mode} ${ms.toFixed(1)} ms`);
      }
    }
    const offMedianMs = median(offMs);
    const cachedMedianMs = median(cachedMs);
    return {
      batch,
      width,
      offMs,
      cachedMs,
      offMedianMs,
      cachedMedianMs,
      ratio: cachedMedianMs / offMedianMs,
      warmupMs,
      changedSites,
    };
  } finally {
    g.tuner.mode = "cached";
    dispose();
    await g.sync();
  }
}

/** Host time to record a step (see {@link recordingOverhead}). */
export interface RecordingOverhead {
  /** Per-step recording wall ms (dryRun, with the flush) in mode "off" and "cached". */
  offMs: number[];
  cachedMs: number[];
  offMedianMs: number;
  cachedMedianMs: number;
  /** Tuning lookups per step (the calls of `Tuner.choose` in mode "cached": GEMMs and conv routes). */
  gemmDispatches: number;
  /** (cached − off) medians per lookup, µs. */
  perGemmUs: number;
}

/**
 * Host time to record one ResNet-18 step without running it (`gpu().dryRun`: allocation, bind groups,
 * recording, submit; no kernel), modes "off" and "cached" alternated (ABBA), `reps` each after 2 warm-up
 * steps of each: what `Tuner.choose` (hashing each GEMM's hook strings) adds to recording a step.
 */
export async function recordingOverhead(batch: number, width = 1, reps = 20): Promise<RecordingOverhead> {
  const g = gpu();
  const { step, dispose } = resnetTrainStep(batch, width);
  let gemmDispatches = 0;
  const tuner = g.tuner;
  const original = tuner.choose;
  const record = (mode: "off" | "cached") => {
    tuner.mode = mode;
    const t = performance.now();
    step();
    g.flush();
    return performance.now() - t;
  };
  const offMs: number[] = [];
  const cachedMs: number[] = [];
  g.dryRun = true;
  try {
    for (let i = 0; i < 2; i++) {
      record("off");
      record("cached");
    }
    tuner.choose = (site) => {
      gemmDispatches++;
      return original.call(tuner, site);
    };
    record("cached");
    tuner.choose = original;
    for (let r = 0; r < reps; r++) {
      for (const mode of r % 2 ? ["cached", "off"] as const : ["off", "cached"] as const) {
        (mode === "off" ? offMs : cachedMs).push(record(mode));
      }
    }
  } finally {
    tuner.choose = original;
    g.dryRun = false;
    tuner.mode = "cached";
  }
  await g.sync();
  dispose();
  await g.sync();
  const offMedianMs = median(offMs);
  const cachedMedianMs = median(cachedMs);
  return {
    offMs,
    cachedMs,
    offMedianMs,
    cachedMedianMs,
    gemmDispatches,
    perGemmUs: (cachedMedianMs - offMedianMs) * 1000 / Math.max(1, gemmDispatches),
  };
}

/** One line for a {@link TuningCompare}. */
export function compareLine(c: TuningCompare): string {
  const cell = (v: number[]) =>
    `${median(v).toFixed(0)} ms (${Math.min(...v).toFixed(0)}–${Math.max(...v).toFixed(0)}, n ${v.length})`;
  return `ResNet-18 ×${c.width} batch ${c.batch} step, tuning off ${cell(c.offMs)}, cached ${
    cell(c.cachedMs)
  }: cached/off ${c.ratio.toFixed(3)} (${c.changedSites} GEMM sites not on the heuristic)`;
}

/** One line for a {@link RecordingOverhead}. */
export function recordingLine(r: RecordingOverhead): string {
  return `recording a step (dryRun), median of ${r.offMs.length}: off ${
    r.offMedianMs.toFixed(2)
  } ms, cached ${r.cachedMedianMs.toFixed(2)} ms (${
    ((r.cachedMedianMs / r.offMedianMs - 1) * 100).toFixed(1)
  }%; ${r.perGemmUs.toFixed(1)} µs per tuning lookup, ${r.gemmDispatches} per step: ` +
    `GEMM dispatches and conv routes)`;
}
