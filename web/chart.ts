/// <reference lib="dom" />
/**
 * Canvas 2D drawing for the figures that animate (a redraw per optimisation step is too frequent for
 * a Vega view): line charts with axes, ticks, labels and a legend (linear or log y), and point
 * configurations on a circle or in a disc (Fig. 1 and Fig. 6 style). Static figures (histograms) use
 * Vega-Lite (`plots.ts`).
 *
 * @module
 */

/** The class colours of the paper's figures (matplotlib's tab10, as `experiments/fig1.ts`). */
export const CLASS_COLORS = [
  "#1f77b4",
  "#ff7f0e",
  "#2ca02c",
  "#d62728",
  "#9467bd",
  "#8c564b",
  "#e377c2",
  "#7f7f7f",
  "#bcbd22",
  "#17becf",
];

/** One line of a chart. */
export interface Series {
  /** Legend text. */
  name: string;
  /** Stroke colour. */
  color: string;
  /** The points, in drawing order. */
  points: readonly { x: number; y: number }[];
  /** Dash pattern (e.g. a bound: `[6, 4]`). */
  dash?: number[];
}

/** Axes and title of a line chart. */
export interface ChartOptions {
  /** Title above the plot. */
  title?: string;
  /** x-axis label. */
  xLabel: string;
  /** y-axis label. */
  yLabel: string;
  /** Logarithmic y axis (non-positive values are dropped). */
  logY?: boolean;
  /** Fixed x range (else the data's). */
  xDomain?: [number, number];
}

/** The last drawing of each canvas, redrawn when the canvas's CSS size changes (rotation, resize). */
const lastDraw = new WeakMap<HTMLCanvasElement, () => void>();
const resizer = typeof ResizeObserver === "undefined"
  ? null
  : new ResizeObserver((entries) => entries.forEach((e) => lastDraw.get(e.target as HTMLCanvasElement)?.()));

function remember(canvas: HTMLCanvasElement, draw: () => void): void {
  if (!lastDraw.has(canvas)) resizer?.observe(canvas);
  lastDraw.set(canvas, draw);
}

/** Sizes the canvas's backing store to its CSS box and the device pixel ratio; returns the CSS size. */
function prepare(canvas: HTMLCanvasElement): { ctx: CanvasRenderingContext2D; w: number; h: number } {
  const ratio = globalThis.devicePixelRatio || 1;
  const w = Math.max(120, canvas.clientWidth || Number(canvas.getAttribute("width")) || 320);
  const h = Math.max(100, canvas.clientHeight || Number(canvas.getAttribute("height")) || 220);
  if (canvas.width !== Math.round(w * ratio) || canvas.height !== Math.round(h * ratio)) {
    canvas.width = Math.round(w * ratio);
    canvas.height = Math.round(h * ratio);
  }
  const ctx = canvas.getContext("2d")!;
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, w, h);
  ctx.font = "11px system-ui, sans-serif";
  return { ctx, w, h };
}

/** About `count` round tick values covering [lo, hi] (1, 2, 5 × 10^k steps). */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) {
    out.push(Number(v.toPrecision(12)));
  }
  return out;
}

function tickText(v: number): string {
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) return v.toExponential(0);
  return String(Number(v.toPrecision(6)));
}

/** Draws a line chart of `series` into `canvas` (white background, axes, grid, legend). */
export function drawLineChart(canvas: HTMLCanvasElement, series: readonly Series[], o: ChartOptions): void {
  remember(canvas, () => drawLineChart(canvas, series, o));
  const { ctx, w, h } = prepare(canvas);
  const left = 58, right = 10, top = o.title ? 22 : 8, bottom = 38;
  const pw = w - left - right, ph = h - top - bottom;
  const fy = (y: number) => (o.logY ? Math.log10(y) : y);
  const pts = series.flatMap((s) => s.points).filter((p) => Number.isFinite(p.x) && Number.isFinite(fy(p.y)));
  let [x0, x1] = o.xDomain ?? [Math.min(...pts.map((p) => p.x)), Math.max(...pts.map((p) => p.x))];
  if (!Number.isFinite(x0) || !Number.isFinite(x1)) [x0, x1] = [0, 1];
  if (x1 <= x0) x1 = x0 + 1;
  let y0 = Math.min(...pts.map((p) => fy(p.y))), y1 = Math.max(...pts.map((p) => fy(p.y)));
  if (!Number.isFinite(y0) || !Number.isFinite(y1)) [y0, y1] = [0, 1];
  if (y1 - y0 < 1e-12) [y0, y1] = [y0 - 0.5, y1 + 0.5];
  const pad = (y1 - y0) * 0.05;
  y0 -= pad;
  y1 += pad;
  if (o.logY) [y0, y1] = [Math.floor(y0), Math.ceil(y1)];
  const X = (x: number) => left + ((x - x0) / (x1 - x0)) * pw;
  const Y = (v: number) => top + ph - ((v - y0) / (y1 - y0)) * ph;

  // Grid, ticks and labels.
  ctx.strokeStyle = "#e4e4e4";
  ctx.fillStyle = "#333";
  ctx.lineWidth = 1;
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  const yTicks = o.logY
    ? Array.from({ length: y1 - y0 + 1 }, (_, i) => y0 + i).filter((_, i, a) => a.length <= 8 || i % 2 === 0)
    : niceTicks(y0, y1, Math.max(3, Math.floor(ph / 40)));
  for (const t of yTicks) {
    ctx.beginPath();
    ctx.moveTo(left, Y(t));
    ctx.lineTo(left + pw, Y(t));
    ctx.stroke();
    ctx.fillText(o.logY ? `1e${t}` : tickText(t), left - 4, Y(t));
  }
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  for (const t of niceTicks(x0, x1, Math.max(3, Math.floor(pw / 70)))) {
    ctx.beginPath();
    ctx.moveTo(X(t), top);
    ctx.lineTo(X(t), top + ph);
    ctx.stroke();
    ctx.fillText(tickText(t), X(t), top + ph + 4);
  }
  ctx.strokeStyle = "#555";
  ctx.strokeRect(left, top, pw, ph);
  ctx.fillText(o.xLabel, left + pw / 2, top + ph + 20);
  ctx.save();
  ctx.translate(12, top + ph / 2);
  ctx.rotate(-Math.PI / 2);
  ctx.textBaseline = "middle";
  ctx.fillText(o.yLabel, 0, 0);
  ctx.restore();
  if (o.title) {
    ctx.font = "bold 12px system-ui, sans-serif";
    ctx.textBaseline = "top";
    ctx.fillText(o.title, left + pw / 2, 4);
    ctx.font = "11px system-ui, sans-serif";
  }

  // Lines, clipped to the plot.
  ctx.save();
  ctx.beginPath();
  ctx.rect(left, top, pw, ph);
  ctx.clip();
  for (const s of series) {
    ctx.strokeStyle = s.color;
    ctx.lineWidth = 1.6;
    ctx.setLineDash(s.dash ?? []);
    ctx.beginPath();
    let started = false;
    for (const p of s.points) {
      const v = fy(p.y);
      if (!Number.isFinite(v)) continue;
      if (started) ctx.lineTo(X(p.x), Y(v));
      else ctx.moveTo(X(p.x), Y(v));
      started = true;
    }
    ctx.stroke();
  }
  ctx.restore();
  ctx.setLineDash([]);

  // Legend, top right inside the plot.
  ctx.textAlign = "left";
  ctx.textBaseline = "middle";
  const lw = Math.max(...series.map((s) => ctx.measureText(s.name).width)) + 34;
  let ly = top + 10;
  ctx.fillStyle = "rgba(255,255,255,0.85)";
  ctx.fillRect(left + pw - lw - 4, top + 2, lw, series.length * 15 + 4);
  for (const s of series) {
    ctx.strokeStyle = s.color;
    ctx.setLineDash(s.dash ?? []);
    ctx.beginPath();
    ctx.moveTo(left + pw - lw, ly);
    ctx.lineTo(left + pw - lw + 22, ly);
    ctx.stroke();
    ctx.fillStyle = "#222";
    ctx.fillText(s.name, left + pw - lw + 26, ly);
    ly += 15;
  }
  ctx.setLineDash([]);
}

/** A point configuration to draw: rows of Z (2-D) coloured by label, optional class weights. */
export interface PointsOptions {
  /** Title above the panel (e.g. "SC = 4.596, step 400"). */
  title: string;
  /** Radius of the reference circle (the sphere of the SC points, the unit disc of CE). */
  radius: number;
  /** Half-width of the square shown. */
  extent: number;
  /** Classifier rows, flat [K·2]: drawn as grey discs with rays from the origin. */
  W?: ArrayLike<number>;
  /** Dot radius in CSS pixels (default 3). */
  dot?: number;
}

/** Draws points `Z` (flat [N·2]) coloured by `labels` as in Fig. 1. */
export function drawPoints(
  canvas: HTMLCanvasElement,
  Z: ArrayLike<number>,
  labels: ArrayLike<number>,
  o: PointsOptions,
): void {
  remember(canvas, () => drawPoints(canvas, Z, labels, o));
  const { ctx, w, h } = prepare(canvas);
  const top = 20, size = Math.min(w, h - top) - 8;
  const cx = w / 2, cy = top + 4 + size / 2, s = size / 2 / o.extent;
  ctx.fillStyle = "#222";
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  ctx.font = "bold 12px system-ui, sans-serif";
  ctx.fillText(o.title, w / 2, 3);
  ctx.strokeStyle = "#ddd";
  ctx.beginPath();
  ctx.moveTo(cx - o.extent * s, cy);
  ctx.lineTo(cx + o.extent * s, cy);
  ctx.moveTo(cx, cy - o.extent * s);
  ctx.lineTo(cx, cy + o.extent * s);
  ctx.stroke();
  ctx.strokeStyle = "#999";
  ctx.beginPath();
  ctx.arc(cx, cy, o.radius * s, 0, 2 * Math.PI);
  ctx.stroke();
  if (o.W) {
    for (let k = 0; k < o.W.length / 2; k++) {
      const wx = o.W[2 * k], wy = o.W[2 * k + 1];
      const t = o.extent / Math.max(Math.abs(wx), Math.abs(wy), 1e-30);
      ctx.strokeStyle = "#888";
      ctx.beginPath();
      ctx.moveTo(cx, cy);
      ctx.lineTo(cx + t * wx * s, cy - t * wy * s);
      ctx.stroke();
      ctx.fillStyle = "rgba(150,150,150,0.9)";
      ctx.strokeStyle = "#555";
      ctx.beginPath();
      ctx.arc(cx + wx * s, cy - wy * s, 7, 0, 2 * Math.PI);
      ctx.fill();
      ctx.stroke();
    }
  }
  const r = o.dot ?? 3;
  for (let i = 0; i < labels.length; i++) {
    ctx.fillStyle = CLASS_COLORS[labels[i] % CLASS_COLORS.length];
    ctx.globalAlpha = 0.75;
    ctx.beginPath();
    ctx.arc(cx + Z[2 * i] * s, cy - Z[2 * i + 1] * s, r, 0, 2 * Math.PI);
    ctx.fill();
  }
  ctx.globalAlpha = 1;
}

/** Axes of a histogram. */
export interface HistogramOptions {
  /** Title above the plot. */
  title: string;
  /** x-axis label. */
  xLabel: string;
  /** Number of bins (default 30). */
  bins?: number;
  /** An x value marked by a red rule (e.g. the regular simplex's γ). */
  marker?: number;
}

/** Draws a histogram of `values` (count per bin) with axes, and an optional red marker line. */
export function drawHistogram(
  canvas: HTMLCanvasElement,
  values: ArrayLike<number>,
  o: HistogramOptions,
): void {
  remember(canvas, () => drawHistogram(canvas, values, o));
  const { ctx, w, h } = prepare(canvas);
  const left = 44, right = 10, top = 22, bottom = 36;
  const pw = w - left - right, ph = h - top - bottom;
  const v = Array.from(values).filter(Number.isFinite);
  let lo = v.length ? Math.min(...v) : 0, hi = v.length ? Math.max(...v) : 1;
  if (o.marker !== undefined) [lo, hi] = [Math.min(lo, o.marker), Math.max(hi, o.marker)];
  if (hi - lo < 1e-9) [lo, hi] = [lo - 0.01, hi + 0.01];
  const pad = (hi - lo) * 0.04;
  lo -= pad;
  hi += pad;
  const nb = o.bins ?? 30;
  const counts = new Array(nb).fill(0);
  for (const x of v) counts[Math.min(nb - 1, Math.floor(((x - lo) / (hi - lo)) * nb))]++;
  const cmax = Math.max(1, ...counts);
  const { X, Y } = histogramAxes(ctx, { left, top, pw, ph, lo, hi, cmax });
  ctx.fillStyle = "#4c78a8";
  for (let b = 0; b < nb; b++) {
    if (!counts[b]) continue;
    const x0 = X(lo + (b / nb) * (hi - lo)), x1 = X(lo + ((b + 1) / nb) * (hi - lo));
    ctx.fillRect(x0 + 0.5, Y(counts[b]), Math.max(1, x1 - x0 - 1), top + ph - Y(counts[b]));
  }
  if (o.marker !== undefined) {
    ctx.strokeStyle = "#d62728";
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    ctx.moveTo(X(o.marker), top);
    ctx.lineTo(X(o.marker), top + ph);
    ctx.stroke();
    ctx.lineWidth = 1;
  }
  ctx.strokeStyle = "#555";
  ctx.strokeRect(left, top, pw, ph);
  ctx.fillStyle = "#333";
  ctx.fillText(
    o.xLabel + (v.length ? ` (${v.length} values)` : " (no data yet)"),
    left + pw / 2,
    top + ph + 20,
  );
  ctx.save();
  ctx.translate(11, top + ph / 2);
  ctx.rotate(-Math.PI / 2);
  ctx.textBaseline = "middle";
  ctx.fillText("count", 0, 0);
  ctx.restore();
  ctx.font = "bold 12px system-ui, sans-serif";
  ctx.fillText(o.title, left + pw / 2, 4);
}

/** One group of a {@link drawGroupedHistogram}. */
export interface HistogramGroup {
  /** Legend text. */
  name: string;
  /** Bar colour. */
  color: string;
  /** The values. */
  values: ArrayLike<number>;
}

/** A histogram whose bars stack the counts of several groups (e.g. batch losses by label configuration). */
export function drawGroupedHistogram(
  canvas: HTMLCanvasElement,
  groups: readonly HistogramGroup[],
  o: { title: string; xLabel: string; bins?: number },
): void {
  remember(canvas, () => drawGroupedHistogram(canvas, groups, o));
  const { ctx, w, h } = prepare(canvas);
  const legendRows = Math.ceil(groups.length / Math.max(1, Math.floor((w - 60) / 110)));
  const left = 60, right = 10, top = 22, bottom = 36 + legendRows * 15;
  const pw = w - left - right, ph = h - top - bottom;
  let lo = Infinity, hi = -Infinity;
  for (const g of groups) {
    for (let i = 0; i < g.values.length; i++) {
      const v = g.values[i];
      if (Number.isFinite(v)) [lo, hi] = [Math.min(lo, v), Math.max(hi, v)];
    }
  }
  if (!Number.isFinite(lo)) [lo, hi] = [0, 1];
  if (hi - lo < 1e-9) [lo, hi] = [lo - 0.5, hi + 0.5];
  const nb = o.bins ?? 80;
  const counts = groups.map(() => new Array(nb).fill(0));
  groups.forEach((g, k) => {
    for (let i = 0; i < g.values.length; i++) {
      const v = g.values[i];
      if (Number.isFinite(v)) counts[k][Math.min(nb - 1, Math.floor(((v - lo) / (hi - lo)) * nb))]++;
    }
  });
  const totals = new Array(nb).fill(0).map((_, b) => counts.reduce((a, c) => a + c[b], 0));
  const cmax = Math.max(1, ...totals);
  const { X, Y } = histogramAxes(ctx, { left, top, pw, ph, lo, hi, cmax });
  for (let b = 0; b < nb; b++) {
    let base = 0;
    const x0 = X(lo + (b / nb) * (hi - lo)), x1 = X(lo + ((b + 1) / nb) * (hi - lo));
    groups.forEach((g, k) => {
      const c = counts[k][b];
      if (!c) return;
      ctx.fillStyle = g.color;
      ctx.fillRect(x0, Y(base + c), Math.max(1, x1 - x0 - 0.5), Y(base) - Y(base + c));
      base += c;
    });
  }
  ctx.strokeStyle = "#555";
  ctx.strokeRect(left, top, pw, ph);
  ctx.fillStyle = "#333";
  ctx.fillText(o.xLabel, left + pw / 2, top + ph + 18);
  ctx.save();
  ctx.translate(11, top + ph / 2);
  ctx.rotate(-Math.PI / 2);
  ctx.textBaseline = "middle";
  ctx.fillText("batches", 0, 0);
  ctx.restore();
  ctx.textAlign = "left";
  ctx.textBaseline = "middle";
  let lx = left, ly = top + ph + 40;
  for (const g of groups) {
    if (lx + 105 > w) [lx, ly] = [left, ly + 15];
    ctx.fillStyle = g.color;
    ctx.fillRect(lx, ly - 5, 10, 10);
    ctx.fillStyle = "#222";
    ctx.fillText(g.name, lx + 14, ly);
    lx += 110;
  }
  ctx.font = "bold 12px system-ui, sans-serif";
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  ctx.fillText(o.title, left + pw / 2, 4);
}

/** A histogram's count grid and value ticks; returns the value → x and count → y maps. */
function histogramAxes(
  ctx: CanvasRenderingContext2D,
  a: { left: number; top: number; pw: number; ph: number; lo: number; hi: number; cmax: number },
): { X: (x: number) => number; Y: (c: number) => number } {
  const { left, top, pw, ph, lo, hi, cmax } = a;
  const X = (x: number) => left + ((x - lo) / (hi - lo)) * pw;
  const Y = (c: number) => top + ph - (c / cmax) * ph;
  ctx.fillStyle = "#333";
  ctx.strokeStyle = "#e4e4e4";
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (const t of niceTicks(0, cmax, 4)) {
    ctx.beginPath();
    ctx.moveTo(left, Y(t));
    ctx.lineTo(left + pw, Y(t));
    ctx.stroke();
    ctx.fillText(tickText(t), left - 4, Y(t));
  }
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  for (const t of niceTicks(lo, hi, Math.max(3, Math.floor(pw / 60)))) {
    ctx.fillText(tickText(t), X(t), top + ph + 4);
  }
  return { X, Y };
}
