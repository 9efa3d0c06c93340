/**
 * A static check of generated WGSL against the software adapter's loop budget (`MAX_LOOP_TRIPS`: llvmpipe
 * stops all of an invocation's loops, silently, after 65,535 iterations in all).
 *
 * Shape-baked kernels put sizes into loop bounds as literals, so a size that outgrows the budget often shows
 * in the source: `literalLoopTrips` finds every `for (var i = A; i < B; i += S)` (also `<=`, `i++`,
 * `i = i + S`) whose start, bound and step are integer literals, nests them by their braces, and adds up
 * what they cost (`loopTrips` per run, times the runs of the enclosing literal loops). It is a lower bound
 * of sorts, not a proof: loops with run-time bounds, loops inside them (counted as if run once) and loops in
 * functions called several times are undercounted, and a literal loop left early by `break` is counted in
 * full (no kernel of the engine does that at a size that matters). The test suite runs it on every kernel
 * it compiles (`tests/util.ts`), next to the op-level budgets of every builder.
 *
 * @module
 */
import { loopTrips, MAX_LOOP_TRIPS } from "../shaders/common.ts";

/** One loop with literal bounds. */
export interface LiteralLoop {
  /** The loop header as written. */
  header: string;
  /** Iterations of one run. */
  iterations: number;
  /** Runs: the product of the iterations of the enclosing literal loops. */
  runs: number;
}

const INT = String.raw`(\d+)[ui]?`;
const HEADER = /for\s*\(\s*var\s+(\w+)\s*(?::\s*\w+\s*)?=\s*([^;]+);\s*([^;]+);\s*([^)]+)\)\s*\{/g;

/** Iterations of `for (var v = init; cond; update)` when all three are literal, else null. */
function iterations(v: string, init: string, cond: string, update: string): number | null {
  const start = new RegExp(`^${INT}$`).exec(init.trim());
  const bound = new RegExp(`^${v}\\s*(<=?)\\s*${INT}$`).exec(cond.trim());
  const u = update.trim().replace(/\s+/g, " ");
  let step: number | null = null;
  if (u === `${v}++`) step = 1;
  const plus = new RegExp(`^${v} (?:\\+= |= ${v} \\+ )${INT}$`).exec(u);
  if (plus) step = Number(plus[1]);
  if (!start || !bound || !step) return null;
  const end = Number(bound[2]) + (bound[1] === "<=" ? 1 : 0);
  return Math.max(0, Math.ceil((end - Number(start[1])) / step));
}

/** Index of the `}` closing the `{` at `open` (the source's braces are balanced). */
function closing(code: string, open: number): number {
  let depth = 0;
  for (let i = open; i < code.length; i++) {
    if (code[i] === "{") depth++;
    else if (code[i] === "}" && --depth === 0) return i;
  }
  return code.length;
}

/** The literal-bound loops of `code` and their total cost (see the module comment). */
export function literalLoopTrips(code: string): { total: number; loops: LiteralLoop[] } {
  const src = code.replace(/\/\/[^\n]*/g, "");
  const found: { start: number; end: number; header: string; iterations: number }[] = [];
  for (const m of src.matchAll(HEADER)) {
    const n = iterations(m[1], m[2], m[3], m[4]);
    if (n === null) continue;
    const open = m.index! + m[0].length - 1;
    found.push({ start: m.index!, end: closing(src, open), header: m[0].slice(0, -1).trim(), iterations: n });
  }
  const loops = found.map((l) => ({
    header: l.header,
    iterations: l.iterations,
    runs: found.filter((o) => o.start < l.start && l.end <= o.end).reduce((p, o) => p * o.iterations, 1),
  }));
  return { total: loops.reduce((s, l) => s + l.runs * loopTrips(l.iterations), 0), loops };
}

/** Why `code` outgrows the loop budget (its costliest literal loops), or null. */
export function loopBudgetCheck(code: string): string | null {
  const { total, loops } = literalLoopTrips(code);
  if (total <= MAX_LOOP_TRIPS) return null;
  const worst = [...loops].sort((a, b) => b.runs * b.iterations - a.runs * a.iterations).slice(0, 3);
  return `its literal loops run ${total} iterations per invocation (> ${MAX_LOOP_TRIPS}, llvmpipe's budget): ` +
    worst.map((l) => `${l.runs} × '${l.header}'`).join(", ");
}

if (import.meta.main) {
  // deno run --allow-read tests/wgsl_loops.ts DIR: every .wgsl file of a tests/wgsl_dump_preload.ts folder.
  const dir = Deno.args[0];
  if (!dir) {
    console.error("usage: wgsl_loops.ts DIR (a folder of .wgsl files)");
    Deno.exit(2);
  }
  let passed = 0;
  let failed = 0;
  for (const entry of [...Deno.readDirSync(dir)].sort((a, b) => a.name.localeCompare(b.name))) {
    if (!entry.name.endsWith(".wgsl")) continue;
    const code = Deno.readTextFileSync(`${dir}/${entry.name}`);
    const error = loopBudgetCheck(code);
    if (error === null) passed++;
    else {
      failed++;
      console.log(`${entry.name} (${code.split("\n", 2).join(" ")}): ${error}`);
    }
  }
  console.log(`loop budget: ${passed} passed, ${failed} failed`);
  if (failed) Deno.exit(1);
}
