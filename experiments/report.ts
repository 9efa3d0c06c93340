/**
 * Markdown report builder for `deno task reproduce`: comparison checks (ours next to the paper's
 * number, with a verdict and its reason), tables, figure links relative to the report's folder,
 * number formatting, and the atomic write of `report.md`.
 *
 * ```ts
 * const r = new MarkdownReport("Reproduction report");
 * r.heading(2, "Theory");
 * r.checks([{ id: "thm2", section: "theory", quantity: "Theorem 2 mean", paper: "824.487",
 *   ours: fmt(824.4868, 3), verdict: "matches", reason: "", required: true }]);
 * r.figure(outDir, join(outDir, "fig1", "fig1.png"), "Fig. 1");
 * await writeReport(outDir, r.render());
 * ```
 * @module
 */
import { join, relative, sep } from "node:path";
import { writeFileAtomic } from "../train/atomic.ts";

/** A verdict: our number agrees with the paper's (within the stated tolerance) or not. */
export type Verdict = "matches" | "differs";

/** One comparison of a number of ours with the paper's. */
export interface Check {
  /** Stable identifier (e.g. "theory.thm2.cifar10"). */
  id: string;
  /** Stage it belongs to (e.g. "theory", "fig6", "section5"). */
  section: string;
  /** What is compared, in words. */
  quantity: string;
  /** The paper's value, as printed (or "—" when the paper gives none). */
  paper: string;
  /** Our value, formatted. */
  ours: string;
  /** Whether they agree. */
  verdict: Verdict;
  /** The tolerance for "matches", or the reason for "differs". */
  reason: string;
  /** A check that must match: when it differs, the reproduction fails (non-zero exit code). */
  required: boolean;
}

/** True when a required check differs. */
export function isFailure(c: Check): boolean {
  return c.required && c.verdict !== "matches";
}

/**
 * Builds a check from a numeric comparison: "matches" when |ours − paper| ≤ tol, else "differs"
 * with `whyDiffers` (or the size of the difference). `paper` may be a number or text.
 */
export function compareNumber(o: {
  id: string;
  section: string;
  quantity: string;
  paper: number | string;
  ours: number;
  /** Target the comparison uses (default: `paper` when it is a number). */
  target?: number;
  /** Absolute tolerance. */
  tol: number;
  /** Significant digits for `ours` (default 6). */
  digits?: number;
  /** Tolerance in words (default "±tol"). */
  tolText?: string;
  /** Reason shown when it differs (default: the difference). */
  whyDiffers?: string;
  required: boolean;
}): Check {
  const target = o.target ?? (typeof o.paper === "number" ? o.paper : NaN);
  const diff = o.ours - target;
  const ok = Number.isFinite(diff) && Math.abs(diff) <= o.tol;
  const tolText = o.tolText ?? `within ±${fmtNum(o.tol, 2)}`;
  return {
    id: o.id,
    section: o.section,
    quantity: o.quantity,
    paper: typeof o.paper === "number" ? String(o.paper) : o.paper,
    ours: fmtNum(o.ours, o.digits ?? 6),
    verdict: ok ? "matches" : "differs",
    reason: ok ? tolText : (o.whyDiffers ??
      `off by ${Number.isFinite(diff) ? fmtNum(diff, 3) : "NaN"} (tolerance ±${fmtNum(o.tol, 2)})`),
    required: o.required,
  };
}

/**
 * Formats a number with `digits` significant digits: fixed notation for magnitudes in [1e-3, 1e6),
 * exponential otherwise; trailing zeros are kept (they carry precision). NaN/±∞ as text.
 */
export function fmtNum(x: number | null | undefined, digits = 4): string {
  if (x === null || x === undefined) return "—";
  if (!Number.isFinite(x)) return Number.isNaN(x) ? "NaN" : x > 0 ? "∞" : "−∞";
  if (x === 0) return "0";
  const a = Math.abs(x);
  if (a >= 1e-3 && a < 1e6) {
    const decimals = Math.max(0, digits - 1 - Math.floor(Math.log10(a)));
    return x.toFixed(Math.min(decimals, 20));
  }
  return x.toExponential(Math.max(0, digits - 1));
}

/** A fraction as a percentage with one decimal ("6.3"). */
export function fmtPct(x: number | null | undefined, decimals = 1): string {
  return x === null || x === undefined || !Number.isFinite(x) ? "—" : (100 * x).toFixed(decimals);
}

/** Seconds as "12.3 s" or "4 min 05 s". */
export function fmtSeconds(s: number): string {
  if (!Number.isFinite(s)) return "?";
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  return `${m} min ${String(Math.round(s - 60 * m)).padStart(2, "0")} s`;
}

/** Escapes a table cell: pipes and newlines would break the row. */
export function escapeCell(text: string): string {
  return text.replace(/\|/g, "\\|").replace(/\r?\n/g, "<br>");
}

/** A GitHub-flavoured markdown table. */
export function mdTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]) => `| ${cells.map(escapeCell).join(" | ")} |`;
  return [line(headers), `|${headers.map(() => "---").join("|")}|`, ...rows.map(line)].join("\n");
}

/** The verdict cell of a check: "matches (why)" or "differs: why" (bold FAILS for required ones). */
export function verdictCell(c: Check): string {
  if (c.verdict === "matches") return c.reason ? `matches (${c.reason})` : "matches";
  return `${c.required ? "**FAILS** — differs" : "differs"}: ${c.reason}`;
}

/** `file` relative to `dir`, with forward slashes (a markdown link that works from `dir`). */
export function relativeLink(dir: string, file: string): string {
  return relative(dir, file).split(sep).join("/");
}

/** A markdown document assembled block by block. */
export class MarkdownReport {
  readonly #blocks: string[] = [];

  /** Starts a report with a level-1 title. */
  constructor(title: string) {
    this.#blocks.push(`# ${title}`);
  }

  /** A heading of `level` (2–6). */
  heading(level: number, text: string): this {
    this.#blocks.push(`${"#".repeat(Math.min(6, Math.max(2, level)))} ${text}`);
    return this;
  }

  /** A paragraph (or any raw markdown block). */
  paragraph(text: string): this {
    this.#blocks.push(text);
    return this;
  }

  /** A bulleted list. */
  bullets(items: readonly string[]): this {
    if (items.length) this.#blocks.push(items.map((i) => `- ${i}`).join("\n"));
    return this;
  }

  /** A table. */
  table(headers: readonly string[], rows: readonly (readonly string[])[]): this {
    this.#blocks.push(mdTable(headers, rows));
    return this;
  }

  /** The standard comparison table: quantity, paper, ours, verdict. */
  checks(checks: readonly Check[]): this {
    if (!checks.length) return this;
    return this.table(
      ["Quantity", "Paper", "Ours", "Verdict"],
      checks.map((c) => [c.quantity, c.paper, c.ours, verdictCell(c)]),
    );
  }

  /**
   * An image linked relative to `reportDir`, when `file` exists (else a note that it is missing).
   * Returns whether the file exists.
   */
  figure(reportDir: string, file: string | undefined, alt: string): boolean {
    if (!file || !exists(file)) {
      this.#blocks.push(
        `*(figure "${alt}" was not written${file ? `: ${relativeLink(reportDir, file)}` : ""})*`,
      );
      return false;
    }
    this.#blocks.push(`![${alt.replace(/[[\]]/g, "")}](${relativeLink(reportDir, file)})`);
    return true;
  }

  /** The markdown text (blocks separated by blank lines, trailing newline). */
  render(): string {
    return this.#blocks.join("\n\n") + "\n";
  }
}

function exists(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/** Writes `markdown` to `<dir>/report.md` atomically; returns the path. */
export async function writeReport(dir: string, markdown: string): Promise<string> {
  const path = join(dir, "report.md");
  await writeFileAtomic(path, markdown);
  return path;
}

/** Every `![alt](target)` image link of a markdown text (targets as written). */
export function imageLinks(markdown: string): string[] {
  return [...markdown.matchAll(/!\[[^\]]*\]\(([^)\s]+)\)/g)].map((m) => m[1]);
}
