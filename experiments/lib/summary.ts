/**
 * Run summaries: `summary.json` in the run folder, and an optional one-line JSON on stdout (for `--json`).
 * @module
 */

import { join } from "node:path";
import { jsonReplacer, writeJsonAtomic } from "../../train/atomic.ts";

/** Write `obj` to `<dir>/summary.json` atomically (pretty-printed); returns the path. */
export async function writeSummary(dir: string, obj: unknown): Promise<string> {
  const path = join(dir, "summary.json");
  await writeJsonAtomic(path, obj);
  return path;
}

/**
 * Print `obj` as exactly one line of JSON on stdout (typed arrays → arrays, bigint → number, NaN/±Infinity →
 * null). Returns the line (without the newline).
 */
export function printJsonLine(obj: unknown): string {
  const line = JSON.stringify(obj, jsonReplacer) ?? "null";
  const bytes = new TextEncoder().encode(line + "\n");
  let off = 0;
  while (off < bytes.length) off += Deno.stdout.writeSync(bytes.subarray(off));
  return line;
}
