/**
 * Command line for the theory module (no permissions needed):
 *
 *   deno task theory <simplex|ce-bound|rw|sc-bound|gamma> [flags] [--json]
 *
 * Invalid arguments print a message on stderr and exit with code 2.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { regularSimplex, simplexInnerProduct, simplexInvariants } from "./simplex.ts";
import {
  ceBoundCorollary1,
  ceBoundCorollary2,
  ceBoundTheorem1,
  lambdaFromWeightDecay,
  rW,
} from "./ce_bound.ts";
import { scBound, scBoundIidExpectation, validateScParams } from "./sc_bound.ts";
import { gammaSimplex } from "./gamma.ts";

/** Outcome of one CLI invocation. */
export interface CliResult {
  /** Exit code: 0 success, 2 usage error, 1 unexpected failure. */
  code: number;
  /** Text for standard output. */
  stdout: string;
  /** Text for standard error. */
  stderr: string;
}

class UsageError extends Error {}

/** Usage text printed by `--help`. */
export const USAGE = `Usage: deno task theory <command> [flags] [--json]

Commands:
  simplex   --K <int> --h <int> [--radius <r>=1]
            vertices of a regular simplex inscribed in the sphere of radius r in R^h, with invariants
  ce-bound  --K <int> (--rho <r> | --rho2 <r2>) and at least one of
            --frobW <F>   Theorem 1:   L_CE >= log(1+(K-1)exp(-rho*sqrt(K)*F/(K-1)))
            --rW <r>      Corollary 1: L_CE >= log(1+(K-1)exp(-K*rho*r/(K-1)))
            --lambda <l> | --wd <wd>  Corollary 2 (objective L_CE + lambda*||W||_F^2, lambda = wd/2)
  rw        --K <int> (--rho <r> | --rho2 <r2>) (--lambda <l> | --wd <wd>)
            the optimal classifier row norm r_W of Corollary 2
  sc-bound  --N <int> --K <int> --b <int> (--rho2 <r2> | --rho <r>) [--method auto|exact|log]
            Theorem 2: mean per multiset, |B| = C(N+b-1,b), log of the total, i.i.d.-batch expectation
  gamma     --K <int>
            gamma = 1 - arccos(-1/(K-1))/pi between regular-simplex vertices

Flags:
  --json    print one line of JSON instead of text
  --help    show this text

Examples:
  deno task theory sc-bound --N 50000 --K 10 --b 256 --rho2 10     # mean 824.487
  deno task theory sc-bound --N 12 --K 3 --b 9 --rho2 1            # mean 12.12015
`;

const OPTIONS = {
  K: { type: "string" },
  h: { type: "string" },
  N: { type: "string" },
  b: { type: "string" },
  radius: { type: "string" },
  rho: { type: "string" },
  rho2: { type: "string" },
  lambda: { type: "string" },
  wd: { type: "string" },
  frobW: { type: "string" },
  rW: { type: "string" },
  method: { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean" },
} as const;

type Values = {
  [k in keyof typeof OPTIONS]?: (typeof OPTIONS)[k]["type"] extends "boolean" ? boolean : string;
};

const ALLOWED: Record<string, (keyof typeof OPTIONS)[]> = {
  simplex: ["K", "h", "radius"],
  "ce-bound": ["K", "rho", "rho2", "frobW", "rW", "lambda", "wd"],
  rw: ["K", "rho", "rho2", "lambda", "wd"],
  "sc-bound": ["N", "K", "b", "rho", "rho2", "method"],
  gamma: ["K"],
};

function num(v: Values, name: keyof typeof OPTIONS, kind: "int" | "pos" | "nonneg", required = true): number {
  const raw = v[name];
  if (raw === undefined) {
    if (required) throw new UsageError(`missing required flag --${name}`);
    return NaN;
  }
  const s = String(raw).trim();
  const x = s === "" ? NaN : Number(s);
  if (!Number.isFinite(x)) throw new UsageError(`--${name} must be a finite number (got '${raw}')`);
  if (kind === "int" && !Number.isInteger(x)) {
    throw new UsageError(`--${name} must be an integer (got '${raw}')`);
  }
  if (kind === "int" && !Number.isSafeInteger(x)) {
    throw new UsageError(`--${name} must be at most 2^53 - 1 = ${Number.MAX_SAFE_INTEGER} (got '${raw}')`);
  }
  if (kind === "pos" && !(x > 0)) throw new UsageError(`--${name} must be > 0 (got '${raw}')`);
  if (kind === "nonneg" && !(x >= 0)) throw new UsageError(`--${name} must be >= 0 (got '${raw}')`);
  return x;
}

function intAtLeast(v: Values, name: keyof typeof OPTIONS, min: number): number {
  const x = num(v, name, "int");
  if (x < min) throw new UsageError(`--${name} must be an integer >= ${min} (got ${x})`);
  return x;
}

/** ρ from --rho or --rho2 (exactly one). */
function rhoOf(v: Values): { rho: number; rho2: number } {
  if (v.rho !== undefined && v.rho2 !== undefined) throw new UsageError("give only one of --rho and --rho2");
  if (v.rho !== undefined) {
    const rho = num(v, "rho", "pos");
    return { rho, rho2: rho * rho };
  }
  if (v.rho2 !== undefined) {
    const rho2 = num(v, "rho2", "pos");
    return { rho: Math.sqrt(rho2), rho2 };
  }
  throw new UsageError("missing required flag --rho (or --rho2)");
}

/** λ from --lambda or --wd (at most one); undefined when neither is given. */
function lambdaOf(v: Values): { lambda: number; from: "lambda" | "wd"; wd?: number } | undefined {
  if (v.lambda !== undefined && v.wd !== undefined) {
    throw new UsageError("give only one of --lambda and --wd");
  }
  if (v.lambda !== undefined) return { lambda: num(v, "lambda", "pos"), from: "lambda" };
  if (v.wd !== undefined) {
    const wd = num(v, "wd", "pos");
    return { lambda: lambdaFromWeightDecay(wd), from: "wd", wd };
  }
  return undefined;
}

function fmt(x: number, digits = 12): string {
  return Number.isFinite(x)
    ? x.toPrecision(digits).replace(/(\.\d*?)0+(e|$)/, "$1$2").replace(/\.(e|$)/, "$1")
    : String(x);
}

function bigToText(x: bigint, logX: number): string {
  const s = x.toString();
  if (s.length <= 40) return s;
  return `${s.slice(0, 1)}.${s.slice(1, 10)}e+${s.length - 1} (${s.length} digits; log = ${fmt(logX)})`;
}

function expText(logX: number): string {
  const l10 = logX / Math.LN10;
  const e = Math.floor(l10);
  return `${(10 ** (l10 - e)).toFixed(9)}e+${e} (log = ${fmt(logX)})`;
}

function jsonLine(obj: unknown): string {
  return JSON.stringify(obj, (_k, val) => (typeof val === "bigint" ? val.toString() : val)) + "\n";
}

/** The most coordinates `simplex` prints (K·h). */
export const MAX_SIMPLEX_COORDINATES = 1_000_000;
/** The largest batch size `sc-bound` sums over (its memory grows with b: one term per l ≤ b). */
export const MAX_SC_BOUND_B = 1_000_000;

function cmdSimplex(v: Values, json: boolean): string {
  const K = intAtLeast(v, "K", 2);
  const h = intAtLeast(v, "h", 1);
  const radius = v.radius === undefined ? 1 : num(v, "radius", "pos");
  if (K > h + 1) {
    throw new UsageError(`a regular simplex with K=${K} vertices needs h >= K-1, but h=${h} (K > h+1)`);
  }
  if (K * h > MAX_SIMPLEX_COORDINATES || K * K * h > 1e9) {
    throw new UsageError(
      `simplex --K ${K} --h ${h}: too large to print (K·h = ${K * h} coordinates; the cap is ` +
        `${MAX_SIMPLEX_COORDINATES} coordinates and K²·h ≤ 1e9 for the invariants)`,
    );
  }
  const rows = regularSimplex(K, h, radius);
  const inv = simplexInvariants(rows);
  const expectedInner = simplexInnerProduct(K, radius);
  if (json) {
    return jsonLine({ command: "simplex", K, h, radius, vertices: rows, expectedInner, invariants: inv });
  }
  const lines = [`Regular simplex: K=${K} vertices in R^${h}, radius ${fmt(radius)}`];
  rows.forEach((r, i) => lines.push(`  zeta_${i + 1} = [${r.map((x) => fmt(x, 10)).join(", ")}]`));
  lines.push(`  max |sum_i zeta_i|       = ${inv.maxAbsSum.toExponential(3)}`);
  lines.push(`  norms in                 [${fmt(inv.minNorm, 15)}, ${fmt(inv.maxNorm, 15)}]`);
  lines.push(`  inner products in        [${fmt(inv.minInner, 15)}, ${fmt(inv.maxInner, 15)}]`);
  lines.push(`  expected -radius^2/(K-1) = ${fmt(expectedInner, 15)}`);
  return lines.join("\n") + "\n";
}

function cmdCeBound(v: Values, json: boolean): string {
  const K = intAtLeast(v, "K", 2);
  const { rho, rho2 } = rhoOf(v);
  const lam = lambdaOf(v);
  const frobW = v.frobW === undefined ? undefined : num(v, "frobW", "nonneg");
  const rWv = v.rW === undefined ? undefined : num(v, "rW", "nonneg");
  if (lam === undefined && frobW === undefined && rWv === undefined) {
    throw new UsageError("ce-bound needs at least one of --frobW, --rW, --lambda, --wd");
  }
  const out: Record<string, unknown> = { command: "ce-bound", K, rho, rho2 };
  const lines = [`Cross-entropy lower bounds: K=${K}, rho_Z=${fmt(rho)}`];
  if (frobW !== undefined) {
    const t1 = ceBoundTheorem1(K, rho, frobW);
    out.theorem1 = { frobW, bound: t1 };
    lines.push(`  Theorem 1   (||W||_F = ${fmt(frobW)}):   L_CE >= ${fmt(t1)}`);
  }
  if (rWv !== undefined) {
    const c1 = ceBoundCorollary1(K, rho, rWv);
    out.corollary1 = { rW: rWv, bound: c1 };
    lines.push(`  Corollary 1 (max ||w_y|| = ${fmt(rWv)}): L_CE >= ${fmt(c1)}`);
  }
  if (lam !== undefined) {
    const c2 = ceBoundCorollary2(K, rho, lam.lambda);
    out.corollary2 = { lambda: lam.lambda, wd: lam.wd ?? null, bound: c2.bound, rW: c2.rW };
    const src = lam.from === "wd" ? ` (wd = ${fmt(lam.wd!)})` : "";
    lines.push(
      `  Corollary 2 (lambda = ${fmt(lam.lambda)}${src}): L_CE + lambda ||W||_F^2 >= ${fmt(c2.bound)}`,
    );
    lines.push(`              at r_W = ${fmt(c2.rW, 15)}`);
  }
  return json ? jsonLine(out) : lines.join("\n") + "\n";
}

function cmdRw(v: Values, json: boolean): string {
  const K = intAtLeast(v, "K", 2);
  const { rho, rho2 } = rhoOf(v);
  const lam = lambdaOf(v);
  if (lam === undefined) throw new UsageError("missing required flag --lambda (or --wd)");
  const r = rW(K, rho, lam.lambda);
  if (json) return jsonLine({ command: "rw", K, rho, rho2, lambda: lam.lambda, wd: lam.wd ?? null, rW: r });
  return `r_W(K=${K}, rho_Z=${fmt(rho)}, lambda=${fmt(lam.lambda)}) = ${fmt(r, 17)}\n`;
}

/** What `sc-bound --json` prints besides the parameters: Theorem 2's values and the i.i.d. expectation. */
export interface ScBoundSummary {
  /** The method used ("exact" or "log"). */
  method: string;
  /** The bound's mean over all multisets 𝔅. */
  mean: number;
  /** |𝔅| as decimal digits (null when only its logarithm is known). */
  numBatches: string | null;
  /** log |𝔅|. */
  logNumBatches: number;
  /** log of the bound on L_SC (the sum over 𝔅). */
  logTotal: number;
  /** The bound on L_SC (null when it overflows). */
  total: number | null;
  /** The simplex value in expectation over i.i.d. batches. */
  iidExpectation: number;
}

/** Theorem 2 as the CLI's `sc-bound` reports it (typed; the parameters are validated by the caller). */
export function scBoundSummary(
  p: { N: number; K: number; b: number; rho2: number; method?: "auto" | "exact" | "log" },
): ScBoundSummary {
  const r = scBound({ N: p.N, K: p.K, b: p.b, rho2: p.rho2, method: p.method ?? "auto" });
  return {
    method: r.method,
    mean: r.mean,
    numBatches: r.numBatches === null ? null : r.numBatches.toString(),
    logNumBatches: r.logNumBatches,
    logTotal: r.logTotal,
    total: Number.isFinite(r.total) ? r.total : null,
    iidExpectation: scBoundIidExpectation({ N: p.N, K: p.K, b: p.b, rho2: p.rho2 }),
  };
}

function cmdScBound(v: Values, json: boolean): string {
  const N = intAtLeast(v, "N", 1);
  const K = intAtLeast(v, "K", 2);
  const b = intAtLeast(v, "b", 2);
  if (b > MAX_SC_BOUND_B) {
    throw new UsageError(
      `--b ${b} exceeds the cap of ${MAX_SC_BOUND_B} (the bound sums one term per l ≤ b; memory and time grow with b)`,
    );
  }
  const { rho, rho2 } = rhoOf(v);
  const method = v.method ?? "auto";
  if (method !== "auto" && method !== "exact" && method !== "log") {
    throw new UsageError(`--method must be auto, exact or log (got '${method}')`);
  }
  if (N % K !== 0) throw new UsageError(`N must be divisible by K for balanced labels (got N=${N}, K=${K})`);
  validateScParams({ N, K, b, rho2 }, "sc-bound");
  const s = scBoundSummary({ N, K, b, rho2, method });
  if (json) return jsonLine({ command: "sc-bound", N, K, b, rho2, rho, ...s });
  const lines = [
    `Theorem 2 (SC lower bound): N=${N} K=${K} b=${b} rho_Z^2=${fmt(rho2)} (method: ${s.method})`,
    `  mean per multiset (bound / |B|):  ${fmt(s.mean)}`,
    `  |B| = C(N+b-1, b):                ${
      s.numBatches !== null ? bigToText(BigInt(s.numBatches), s.logNumBatches) : expText(s.logNumBatches)
    }`,
    `  bound on L_SC (sum over B):       ${
      s.total !== null && s.total < 1e21 ? fmt(s.total) : expText(s.logTotal)
    }`,
    `  i.i.d.-batch expectation:         ${
      fmt(s.iidExpectation)
    }  (b indices drawn uniformly with replacement)`,
  ];
  return lines.join("\n") + "\n";
}

function cmdGamma(v: Values, json: boolean): string {
  const K = intAtLeast(v, "K", 2);
  const g = gammaSimplex(K);
  if (json) return jsonLine({ command: "gamma", K, gamma: g, cosine: -1 / (K - 1) });
  return `gamma at a regular simplex, K=${K}: ${fmt(g, 15)}  (cosine ${fmt(-1 / (K - 1), 15)})\n`;
}

const COMMANDS: Record<string, (v: Values, json: boolean) => string> = {
  simplex: cmdSimplex,
  "ce-bound": cmdCeBound,
  rw: cmdRw,
  "sc-bound": cmdScBound,
  gamma: cmdGamma,
};

/** Rewrites `--flag -1` as `--flag=-1` for string flags, so negative numbers reach validation. */
function joinNegativeValues(args: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const name = a.startsWith("--") && !a.includes("=") ? a.slice(2) : "";
    const opt = (OPTIONS as Record<string, { type: string }>)[name];
    const next = args[i + 1];
    if (opt?.type === "string" && next !== undefined && /^-(\d|\.\d|Infinity)/.test(next)) {
      out.push(`${a}=${next}`);
      i++;
    } else {
      out.push(a);
    }
  }
  return out;
}

/**
 * Runs the CLI in-process.
 *
 * @param args command-line arguments (without the program name)
 * @returns exit code and the text for stdout and stderr
 */
export function main(args: string[]): CliResult {
  let values: Values, positionals: string[];
  try {
    const parsed = parseArgs({
      args: joinNegativeValues(args),
      options: OPTIONS,
      allowPositionals: true,
      strict: true,
    });
    values = parsed.values as Values;
    positionals = parsed.positionals;
  } catch (e) {
    return { code: 2, stdout: "", stderr: `error: ${(e as Error).message}\n(run with --help for usage)\n` };
  }
  if (values.help) return { code: 0, stdout: USAGE, stderr: "" };
  if (positionals.length === 0) {
    return { code: 2, stdout: "", stderr: `error: missing command\n\n${USAGE}` };
  }
  if (positionals.length > 1) {
    return { code: 2, stdout: "", stderr: `error: unexpected argument '${positionals[1]}'\n` };
  }
  const cmd = positionals[0];
  const run = COMMANDS[cmd];
  if (!run) {
    return {
      code: 2,
      stdout: "",
      stderr: `error: unknown command '${cmd}' (expected one of: ${Object.keys(COMMANDS).join(", ")})\n`,
    };
  }
  for (const k of Object.keys(values) as (keyof typeof OPTIONS)[]) {
    if (k === "json" || k === "help") continue;
    if (!ALLOWED[cmd].includes(k)) {
      return { code: 2, stdout: "", stderr: `error: flag --${k} does not apply to '${cmd}'\n` };
    }
  }
  try {
    return { code: 0, stdout: run(values, values.json === true), stderr: "" };
  } catch (e) {
    if (e instanceof UsageError || e instanceof RangeError) {
      return { code: 2, stdout: "", stderr: `error: ${e.message}\n` };
    }
    return { code: 1, stdout: "", stderr: `error: ${(e as Error)?.stack ?? e}\n` };
  }
}

if (import.meta.main) {
  const r = main(Deno.args);
  if (r.stdout) await Deno.stdout.write(new TextEncoder().encode(r.stdout));
  if (r.stderr) await Deno.stderr.write(new TextEncoder().encode(r.stderr));
  Deno.exit(r.code);
}
