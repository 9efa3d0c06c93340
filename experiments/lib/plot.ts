/**
 * Figures: Vega-Lite spec → (vega-lite compile) → Vega → headless SVG → PNG via resvg (WebAssembly).
 *
 * Runs under `--allow-read --allow-write --allow-env` (the resvg .wasm is read from the npm cache via
 * `import.meta.resolve`). resvg in WebAssembly has no system fonts, so a TTF is loaded from well-known
 * locations (DejaVu Sans, Liberation Sans, Arial; or `PLOT_FONT=/path/a.ttf[,/path/b.ttf]`, or
 * {@link setPlotFonts}). Without any font the PNG is still written, without text, and a warning is printed
 * once. The SVG always contains real `<text>` elements (font-family `sans-serif`).
 *
 * Vega has no canvas here, so label widths are estimated; layout is good but not pixel-perfect.
 * @module
 */

// deno-lint-ignore no-import-prefix -- pinned inline: scripts must also run when imported by URL (no import map)
import * as vega from "npm:vega@6.4.0";
// deno-lint-ignore no-import-prefix -- pinned inline: scripts must also run when imported by URL (no import map)
import * as vl from "npm:vega-lite@6.5.0";
// deno-lint-ignore no-import-prefix -- pinned inline: scripts must also run when imported by URL (no import map)
import { initWasm, Resvg } from "npm:@resvg/resvg-wasm@2.6.2";
import { join } from "node:path";
import { writeFileAtomic } from "../../train/atomic.ts";

/** A Vega-Lite specification (loosely typed so callers can tweak builder output freely). */
export type VegaLiteSpec = Record<string, unknown>;

const SCHEMA = "https://vega.github.io/schema/vega-lite/v6.json";

/** Shared look applied to every top-level spec produced here (callers may override via `spec.config`). */
export const DEFAULT_CONFIG: Record<string, unknown> = {
  font: "sans-serif",
  view: { continuousWidth: 320, continuousHeight: 220 },
  title: { fontSize: 13, anchor: "middle" },
  axis: { labelFontSize: 10, titleFontSize: 11, grid: true, gridOpacity: 0.5 },
  legend: { labelFontSize: 10, titleFontSize: 11 },
};

// ---------------------------------------------------------------------------------------------------------------
// Rendering

/** Compile a Vega-Lite spec and render it to an SVG string (headless, no canvas, no network). */
export async function renderVegaLite(spec: VegaLiteSpec): Promise<string> {
  const full: VegaLiteSpec = {
    $schema: SCHEMA,
    background: "white",
    padding: 8,
    ...spec,
    config: mergeConfig(DEFAULT_CONFIG, spec.config as Record<string, unknown> | undefined),
  };
  const compiled = vl.compile(full as unknown as vl.TopLevelSpec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: "none", logLevel: vega.Warn });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

function mergeConfig(
  base: Record<string, unknown>,
  over: Record<string, unknown> | undefined,
): Record<string, unknown> {
  if (!over) return base;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] =
      v && typeof v === "object" && !Array.isArray(v) && b && typeof b === "object" && !Array.isArray(b)
        ? mergeConfig(b as Record<string, unknown>, v as Record<string, unknown>)
        : v;
  }
  return out;
}

const RESVG_WASM = "npm:@resvg/resvg-wasm@2.6.2/index_bg.wasm";
let resvgReady: Promise<void> | undefined;

function ensureResvg(): Promise<void> {
  resvgReady ??= (async () => {
    const url = new URL(import.meta.resolve(RESVG_WASM));
    const bytes = url.protocol === "file:"
      ? await Deno.readFile(url)
      : new Uint8Array(await (await fetch(url)).arrayBuffer());
    try {
      await initWasm(bytes);
    } catch (e) {
      if (!/already/i.test(String((e as Error)?.message ?? e))) throw e;
    }
  })();
  resvgReady.catch(() => (resvgReady = undefined));
  return resvgReady;
}

/** Font files searched in order; the first family with a readable regular face wins (bold is optional). */
const FONT_CANDIDATES: { family: string; files: string[] }[] = [
  {
    family: "DejaVu Sans",
    files: [
      "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
      "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    ],
  },
  {
    family: "DejaVu Sans",
    files: [
      "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
      "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans-Bold.ttf",
    ],
  },
  {
    family: "DejaVu Sans",
    files: ["/usr/share/fonts/dejavu/DejaVuSans.ttf", "/usr/share/fonts/dejavu/DejaVuSans-Bold.ttf"],
  },
  {
    family: "DejaVu Sans",
    files: ["/usr/share/fonts/TTF/DejaVuSans.ttf", "/usr/share/fonts/TTF/DejaVuSans-Bold.ttf"],
  },
  {
    family: "DejaVu Sans",
    files: ["/usr/local/share/fonts/DejaVuSans.ttf", "/usr/local/share/fonts/DejaVuSans-Bold.ttf"],
  },
  {
    family: "Liberation Sans",
    files: [
      "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
      "/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf",
    ],
  },
  {
    family: "Liberation Sans",
    files: [
      "/usr/share/fonts/liberation-sans/LiberationSans-Regular.ttf",
      "/usr/share/fonts/liberation-sans/LiberationSans-Bold.ttf",
    ],
  },
  {
    family: "Arial",
    files: [
      "/System/Library/Fonts/Supplemental/Arial.ttf",
      "/System/Library/Fonts/Supplemental/Arial Bold.ttf",
    ],
  },
  { family: "Arial", files: ["/Library/Fonts/Arial.ttf", "/Library/Fonts/Arial Bold.ttf"] },
  { family: "Arial", files: ["C:\\Windows\\Fonts\\arial.ttf", "C:\\Windows\\Fonts\\arialbd.ttf"] },
];

/** Fonts used by {@link svgToPng}. */
export interface PlotFonts {
  buffers: Uint8Array[];
  /** Family mapped to generic `sans-serif` (resvg falls back to any loaded font when unknown). */
  family?: string;
  /** Files the buffers came from (diagnostics). */
  paths: string[];
}

let fontsPromise: Promise<PlotFonts> | undefined;
let warnedNoFont = false;

async function tryRead(path: string): Promise<Uint8Array | undefined> {
  try {
    return await Deno.readFile(path);
  } catch {
    return undefined; // missing, or no read permission
  }
}

async function discoverFonts(): Promise<PlotFonts> {
  let env: string | undefined;
  try {
    env = Deno.env.get("PLOT_FONT");
  } catch { /* no --allow-env */ }
  if (env) {
    const paths = env.split(",").map((p) => p.trim()).filter(Boolean);
    const found: PlotFonts = { buffers: [], paths: [] };
    for (const p of paths) {
      const b = await tryRead(p);
      if (b) {
        found.buffers.push(b);
        found.paths.push(p);
      } else console.error(`plot: PLOT_FONT file not readable: ${p}`);
    }
    if (found.buffers.length) return found;
  }
  for (const c of FONT_CANDIDATES) {
    const regular = await tryRead(c.files[0]);
    if (!regular) continue;
    const out: PlotFonts = { buffers: [regular], family: c.family, paths: [c.files[0]] };
    for (const f of c.files.slice(1)) {
      const b = await tryRead(f);
      if (b) {
        out.buffers.push(b);
        out.paths.push(f);
      }
    }
    return out;
  }
  return { buffers: [], paths: [] };
}

/** The fonts that PNG rendering uses (discovered once, lazily). Empty `buffers` means text is not drawn. */
export function getPlotFonts(): Promise<PlotFonts> {
  fontsPromise ??= discoverFonts();
  return fontsPromise;
}

/** Override font discovery with explicit TTF/OTF bytes (e.g. a font shipped with the repository). */
export function setPlotFonts(buffers: Uint8Array[], family?: string): void {
  fontsPromise = Promise.resolve({ buffers, family, paths: [] });
}

/** Options for {@link svgToPng}. */
export interface PngOptions {
  /** Pixel scale relative to the SVG's size (default 2). */
  scale?: number;
  /** Background colour (default white). */
  background?: string;
}

/**
 * Rasterise SVG to PNG bytes with resvg (async because the WebAssembly module and fonts load on first use).
 * Text is drawn only when a font is available (see module docs); otherwise a warning is printed once.
 */
export async function svgToPng(svg: string, opts: PngOptions = {}): Promise<Uint8Array> {
  await ensureResvg();
  const fonts = await getPlotFonts();
  if (fonts.buffers.length === 0 && !warnedNoFont) {
    warnedNoFont = true;
    console.error(
      "plot: warning: no TTF font found; PNG figures will have no text. Install fonts-dejavu-core " +
        "(or set PLOT_FONT=/path/to/font.ttf). SVG output is unaffected.",
    );
  }
  const scale = opts.scale ?? 2;
  if (!(scale > 0) || !Number.isFinite(scale)) throw new RangeError(`svgToPng: invalid scale ${scale}`);
  const family = fonts.family;
  const resvg = new Resvg(svg, {
    background: opts.background ?? "white",
    fitTo: { mode: "zoom", value: scale },
    font: {
      fontBuffers: fonts.buffers,
      loadSystemFonts: false,
      ...(family ? { defaultFontFamily: family, sansSerifFamily: family } : {}),
    },
  });
  try {
    const img = resvg.render();
    try {
      return img.asPng();
    } finally {
      img.free();
    }
  } finally {
    resvg.free();
  }
}

/** Options for {@link saveFigure}. */
export interface SaveFigureOptions extends PngOptions {
  /** Also write a PNG (default true). */
  png?: boolean;
}

/**
 * Render `spec` and write `<dir>/<name>.svg` and `<dir>/<name>.png` atomically (creating `dir`).
 * Returns the written paths.
 */
export async function saveFigure(
  dir: string,
  name: string,
  spec: VegaLiteSpec,
  opts: SaveFigureOptions = {},
): Promise<{ svg: string; png?: string }> {
  await Deno.mkdir(dir, { recursive: true });
  const svg = await renderVegaLite(spec);
  const svgPath = join(dir, `${name}.svg`);
  await writeFileAtomic(svgPath, svg);
  if (opts.png === false) return { svg: svgPath };
  const pngPath = join(dir, `${name}.png`);
  await writeFileAtomic(pngPath, await svgToPng(svg, opts));
  return { svg: svgPath, png: pngPath };
}

// ---------------------------------------------------------------------------------------------------------------
// Spec builders

/** Escape a column name for use as a Vega-Lite field (dots and brackets would mean nested access). */
export function field(name: string): string {
  return name.replace(/[.[\]\\]/g, "\\$&");
}

type Row = Record<string, unknown>;
type ScaleType = "linear" | "log" | "symlog" | "sqrt";

/** Options common to the builders. */
export interface ChartCommon {
  title: string;
  subtitle?: string;
  width?: number;
  height?: number;
  xTitle?: string;
  yTitle?: string;
}

function titleOf(o: ChartCommon): unknown {
  return o.subtitle ? { text: o.title, subtitle: o.subtitle } : o.title;
}

function scaleOf(type: ScaleType | undefined, domain?: readonly [number, number]): Record<string, unknown> {
  const s: Record<string, unknown> = {};
  if (type && type !== "linear") s.type = type;
  if (type === "linear" || type === undefined) s.zero = false;
  if (domain) {
    s.domain = [...domain];
    s.nice = false;
  }
  return s;
}

/** Options for {@link lineChart}. */
export interface LineChartOptions extends ChartCommon {
  data: readonly Row[];
  x: string;
  /** One column, or several (wide data: each becomes a series named after the column). */
  y: string | readonly string[];
  /** Column that splits series (colour). Ignored when `y` is an array. */
  color?: string;
  /** Column that sets dash pattern (e.g. train vs test). */
  strokeDash?: string;
  xScale?: ScaleType;
  yScale?: ScaleType;
  xDomain?: readonly [number, number];
  yDomain?: readonly [number, number];
  /** Draw point markers on the line (default false). */
  points?: boolean;
  /** Legend title for the colour channel. */
  colorTitle?: string;
}

/** Line chart; several series via `color` (long data) or an array `y` (wide data). */
export function lineChart(o: LineChartOptions): VegaLiteSpec {
  const multiY = Array.isArray(o.y);
  const yFields = multiY ? [...(o.y as readonly string[])] : [o.y as string];
  const yField = multiY ? "value" : yFields[0];
  const colorField = multiY ? "series" : o.color;
  const encoding: Record<string, unknown> = {
    x: {
      field: field(o.x),
      type: "quantitative",
      title: o.xTitle ?? o.x,
      scale: scaleOf(o.xScale, o.xDomain),
    },
    y: {
      field: multiY ? yField : field(yField),
      type: "quantitative",
      title: o.yTitle ?? (multiY ? "" : yField),
      scale: scaleOf(o.yScale, o.yDomain),
    },
  };
  if (colorField) {
    encoding.color = {
      field: multiY ? colorField : field(colorField),
      type: "nominal",
      title: o.colorTitle ?? (multiY ? null : colorField),
    };
  }
  if (o.strokeDash) encoding.strokeDash = { field: field(o.strokeDash), type: "nominal" };
  return {
    title: titleOf(o),
    width: o.width ?? 320,
    height: o.height ?? 220,
    data: { values: o.data },
    ...(multiY ? { transform: [{ fold: yFields.map(field), as: ["series", "value"] }] } : {}),
    mark: { type: "line", point: o.points ?? false, strokeWidth: 1.75, clip: true },
    encoding,
  };
}

/** Options for {@link scatterChart}. */
export interface ScatterChartOptions extends ChartCommon {
  data: readonly Row[];
  x: string;
  y: string;
  /** Column coloured as nominal categories (e.g. class id). */
  color?: string;
  colorTitle?: string;
  /** Column with text drawn next to each point (e.g. class names for class means). */
  label?: string;
  /** Same scale on both axes and a square plot (default true). */
  equalAspect?: boolean;
  /** Draw a circle outline: `true` = unit circle, a number = that radius (centre 0,0). */
  circle?: boolean | number;
  /** Common axis domain (default: data extent, incl. the circle, with 5 % padding). */
  domain?: readonly [number, number];
  /** Point area in px² (default 30). */
  size?: number;
  opacity?: number;
}

/** Scatter plot with optional class colours, equal aspect and circle outline (S¹ / unit disc). */
export function scatterChart(o: ScatterChartOptions): VegaLiteSpec {
  const equal = o.equalAspect ?? true;
  const radius = o.circle === true ? 1 : typeof o.circle === "number" ? o.circle : 0;
  let domainX: [number, number] | undefined;
  let domainY: [number, number] | undefined;
  if (o.domain) {
    domainX = [...o.domain];
    domainY = [...o.domain];
  } else if (equal || radius > 0) {
    let lo = radius > 0 ? -radius : Infinity, hi = radius > 0 ? radius : -Infinity;
    let xlo = lo, xhi = hi, ylo = lo, yhi = hi;
    for (const r of o.data) {
      const x = Number(r[o.x]), y = Number(r[o.y]);
      if (Number.isFinite(x)) (xlo = Math.min(xlo, x)), (xhi = Math.max(xhi, x));
      if (Number.isFinite(y)) (ylo = Math.min(ylo, y)), (yhi = Math.max(yhi, y));
    }
    if (equal) {
      lo = Math.min(xlo, ylo);
      hi = Math.max(xhi, yhi);
      if (!(hi > lo)) (lo = (Number.isFinite(lo) ? lo : 0) - 1), (hi = lo + 2);
      const pad = 0.05 * (hi - lo);
      domainX = domainY = [lo - pad, hi + pad];
    } else {
      const padded = (a: number, b: number): [number, number] => {
        if (!(b > a)) (a = (Number.isFinite(a) ? a : 0) - 1), (b = a + 2);
        return [a - 0.05 * (b - a), b + 0.05 * (b - a)];
      };
      domainX = padded(xlo, xhi);
      domainY = padded(ylo, yhi);
    }
  }
  const w = o.width ?? 300;
  const h = equal ? w : o.height ?? 300;
  const scale = (d?: [number, number]) => d ? { domain: d, nice: false, zero: false } : { zero: false };
  const x = { field: field(o.x), type: "quantitative", title: o.xTitle ?? o.x, scale: scale(domainX) };
  const y = { field: field(o.y), type: "quantitative", title: o.yTitle ?? o.y, scale: scale(domainY) };
  const layers: Record<string, unknown>[] = [];
  if (radius > 0) {
    const n = 256;
    const pts = Array.from({ length: n + 1 }, (_, i) => ({
      i,
      cx: radius * Math.cos((2 * Math.PI * i) / n),
      cy: radius * Math.sin((2 * Math.PI * i) / n),
    }));
    layers.push({
      data: { values: pts },
      mark: { type: "line", color: "#888", strokeWidth: 1, strokeDash: [4, 3], clip: true },
      encoding: {
        x: { ...x, field: "cx" },
        y: { ...y, field: "cy" },
        order: { field: "i", type: "quantitative" },
      },
    });
  }
  const enc: Record<string, unknown> = { x, y };
  if (o.color) {
    enc.color = { field: field(o.color), type: "nominal", title: o.colorTitle ?? o.color };
  }
  layers.push({
    data: { values: o.data },
    mark: { type: "circle", size: o.size ?? 30, opacity: o.opacity ?? 0.8, clip: true },
    encoding: enc,
  });
  if (o.label) {
    layers.push({
      data: { values: o.data },
      mark: { type: "text", align: "left", dx: 5, dy: -5, fontSize: 10, clip: true },
      encoding: { x, y, text: { field: field(o.label), type: "nominal" } },
    });
  }
  return { title: titleOf(o), width: w, height: h, layer: layers };
}

/** A vertical marker line for {@link histogram}. */
export interface Marker {
  value: number;
  label?: string;
  /** Default red. */
  color?: string;
}

/** Options for {@link histogram}. */
export interface HistogramOptions extends ChartCommon {
  /** One sample, or several named series overlaid with transparency. */
  values: ArrayLike<number> | Record<string, ArrayLike<number>>;
  /** Number of equal-width bins (default 40). */
  bins?: number;
  /** Bin range (default: extent of all finite values and markers). */
  domain?: readonly [number, number];
  /** Vertical rules with labels (default red). */
  markers?: readonly Marker[];
  /** "count" (default), "fraction" (per series sums to 1) or "density" (integrates to 1). */
  normalize?: "count" | "fraction" | "density";
  yScale?: ScaleType;
  colorTitle?: string;
}

/** Equal-width histogram bins; returns edges (`bins + 1`) and counts. Values outside `[lo, hi]` are dropped. */
export function binValues(
  values: ArrayLike<number>,
  bins: number,
  lo: number,
  hi: number,
): { edges: number[]; counts: number[] } {
  const counts = new Array<number>(bins).fill(0);
  const width = (hi - lo) / bins;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!Number.isFinite(v) || v < lo || v > hi) continue;
    counts[Math.min(bins - 1, Math.floor((v - lo) / width))]++;
  }
  return { edges: Array.from({ length: bins + 1 }, (_, i) => lo + i * width), counts };
}

/** Histogram (bins computed here, so it is exact and cheap for large samples) with optional marker rules. */
export function histogram(o: HistogramOptions): VegaLiteSpec {
  const isSingle = typeof (o.values as ArrayLike<number>).length === "number";
  const series: Record<string, ArrayLike<number>> = isSingle
    ? { "": o.values as ArrayLike<number> }
    : o.values as Record<string, ArrayLike<number>>;
  const bins = Math.max(1, Math.floor(o.bins ?? 40));
  let lo: number, hi: number;
  if (o.domain) [lo, hi] = o.domain;
  else {
    lo = Infinity;
    hi = -Infinity;
    for (const vs of Object.values(series)) {
      for (let i = 0; i < vs.length; i++) {
        const v = vs[i];
        if (Number.isFinite(v)) (lo = Math.min(lo, v)), (hi = Math.max(hi, v));
      }
    }
    for (const m of o.markers ?? []) {
      if (Number.isFinite(m.value)) (lo = Math.min(lo, m.value)), (hi = Math.max(hi, m.value));
    }
    if (!Number.isFinite(lo)) (lo = 0), (hi = 1);
    if (hi === lo) (lo -= 0.5), (hi += 0.5);
  }
  const norm = o.normalize ?? "count";
  const rows: Row[] = [];
  for (const [name, vs] of Object.entries(series)) {
    const { edges, counts } = binValues(vs, bins, lo, hi);
    const total = counts.reduce((a, b) => a + b, 0) || 1;
    for (let b = 0; b < bins; b++) {
      const w = edges[b + 1] - edges[b];
      const c = norm === "fraction"
        ? counts[b] / total
        : norm === "density"
        ? counts[b] / total / w
        : counts[b];
      rows.push({ series: name, x0: edges[b], x1: edges[b + 1], count: c });
    }
  }
  const multi = !isSingle;
  const xScale = { domain: [lo, hi], nice: false, zero: false };
  const layers: Record<string, unknown>[] = [{
    data: { values: rows },
    mark: { type: "rect", opacity: multi ? 0.55 : 0.85, ...(multi ? {} : { color: "#4c78a8" }) },
    encoding: {
      x: { field: "x0", type: "quantitative", title: o.xTitle ?? "value", scale: xScale },
      x2: { field: "x1" },
      y: {
        field: "count",
        type: "quantitative",
        stack: null,
        title: o.yTitle ?? norm,
        ...(o.yScale && o.yScale !== "linear" ? { scale: { type: o.yScale } } : {}),
      },
      ...(multi ? { color: { field: "series", type: "nominal", title: o.colorTitle ?? null } } : {}),
    },
  }];
  const markers = (o.markers ?? []).filter((m) => Number.isFinite(m.value));
  if (markers.length) {
    const mrows = markers.map((m, i) => ({
      value: m.value,
      label: m.label ?? "",
      color: m.color ?? "red",
      ypix: 2 + 12 * i,
    }));
    layers.push({
      data: { values: mrows },
      mark: { type: "rule", strokeWidth: 1.5 },
      encoding: {
        x: { field: "value", type: "quantitative", scale: xScale },
        color: { field: "color", type: "nominal", scale: null, legend: null },
      },
    });
    // Labels sit right of their rule, or left of it near the right edge so they stay inside the plot.
    const nearRight = (v: number) => v > lo + 0.85 * (hi - lo);
    for (const right of [false, true]) {
      const sub = mrows.filter((m) => nearRight(m.value) === right && m.label !== "");
      if (!sub.length) continue;
      layers.push({
        data: { values: sub },
        mark: {
          type: "text",
          align: right ? "right" : "left",
          baseline: "top",
          dx: right ? -3 : 3,
          fontSize: 10,
        },
        encoding: {
          x: { field: "value", type: "quantitative", scale: xScale },
          y: { field: "ypix", type: "quantitative", scale: null },
          text: { field: "label", type: "nominal" },
          color: { field: "color", type: "nominal", scale: null, legend: null },
        },
      });
    }
  }
  return {
    title: titleOf(o),
    width: o.width ?? 320,
    height: o.height ?? 220,
    layer: layers,
    resolve: { scale: { color: "independent" } },
  };
}

const TOP_LEVEL_ONLY = ["$schema", "config", "background", "padding", "autosize", "usermeta"];

function asPanel(spec: VegaLiteSpec): VegaLiteSpec {
  const out: VegaLiteSpec = { ...spec };
  for (const k of TOP_LEVEL_ONLY) delete out[k];
  return out;
}

/** Options for the concat helpers. */
export interface ConcatOptions {
  /** Overall title above all panels. */
  title?: string;
  /** Pixels between panels (default 24). */
  spacing?: number;
}

function concatSpec(
  kind: "hconcat" | "vconcat" | "concat",
  panels: readonly VegaLiteSpec[],
  o: ConcatOptions,
  columns?: number,
): VegaLiteSpec {
  return {
    ...(o.title ? { title: { text: o.title, fontSize: 15 } } : {}),
    [kind]: panels.map(asPanel),
    ...(columns ? { columns } : {}),
    spacing: o.spacing ?? 24,
    resolve: { scale: { color: "independent" }, legend: { color: "independent" } },
  };
}

/** Panels side by side (each keeps its own title, scales and legend). */
export function hconcat(panels: readonly VegaLiteSpec[], o: ConcatOptions = {}): VegaLiteSpec {
  return concatSpec("hconcat", panels, o);
}

/** Panels stacked vertically. */
export function vconcat(panels: readonly VegaLiteSpec[], o: ConcatOptions = {}): VegaLiteSpec {
  return concatSpec("vconcat", panels, o);
}

/** Panels in a grid with `columns` per row, wrapping. */
export function grid(panels: readonly VegaLiteSpec[], columns: number, o: ConcatOptions = {}): VegaLiteSpec {
  return concatSpec("concat", panels, o, Math.max(1, Math.floor(columns)));
}
