/**
 * Shared command-line parsing for experiment scripts, on `node:util` parseArgs.
 *
 * ```ts
 * const cfg = parseExperimentArgs(Deno.args, {
 *   epochs: { type: "integer", default: 100, min: 1, description: "training epochs" },
 *   lr: { type: "number", default: 0.1, min: 0, description: "learning rate" },
 *   loss: { type: "string", default: "supcon", choices: ["supcon", "ce"], description: "loss" },
 *   batchSizes: { type: "integer[]", default: [32, 64], description: "batch sizes (comma separated)" },
 *   fast: { type: "boolean", default: false, description: "smoke-test sizes" },
 * }, { name: "fig4", description: "Reproduce Figure 4" });
 * // cfg: { epochs: number; lr: number; loss: string; batchSizes: number[]; fast: boolean;
 * //        out: string; seed: number; json: boolean; quiet: boolean }
 * const dir = await runDir(cfg.out);
 * await saveConfig(dir, cfg);
 * ```
 *
 * camelCase keys map to kebab-case flags (`batchSizes` → `--batch-sizes`); booleans also accept `--no-<flag>`.
 * Built-in flags: `--out DIR` (default `runs/<name>-<UTC timestamp>`), `--seed N`, `--json`, `--quiet`, `--help`.
 * @module
 */

import { parseArgs } from "node:util";
import { join } from "node:path";
import { writeJsonAtomic } from "../../train/atomic.ts";

/** Value kinds. `*[]` kinds are comma-separated lists (`--seeds 0,1,2`) and may also be repeated. */
export type OptionType = "number" | "integer" | "string" | "boolean" | "number[]" | "integer[]" | "string[]";

interface TypeMap {
  number: number;
  integer: number;
  string: string;
  boolean: boolean;
  "number[]": number[];
  "integer[]": number[];
  "string[]": string[];
}

/** Defaults may be readonly (e.g. from `as const` specs). */
type DefaultMap = {
  [K in keyof TypeMap]: TypeMap[K] extends (infer E)[] ? readonly E[] : TypeMap[K];
};

/**
 * One option of kind `T`, with either a `default` (the parsed key is always set) or `optional: true` (the
 * key is absent unless the flag is given: the caller's own default applies, no sentinel value needed).
 */
export type OptionSpecOf<T extends OptionType> =
  & OptionBase<T>
  & ({ default: DefaultMap[T]; optional?: never } | { optional: true; default?: never });

/** What every option has. */
export interface OptionBase<T extends OptionType> {
  type: T;
  description: string;
  /** Single-letter alias, e.g. `"e"` for `-e`. */
  short?: string;
  /** Inclusive bounds for numbers (each list element for lists). */
  min?: number;
  max?: number;
  /** Allowed values for strings (each list element for lists). */
  choices?: readonly string[];
  /** Placeholder shown in --help (default derived from type). */
  metavar?: string;
}

/** One option (discriminated on `type`, so `default` is checked against it). */
export type OptionSpec = { [T in OptionType]: OptionSpecOf<T> }[OptionType];

/** Option table: config key → spec. */
export type OptionsSpec = Record<string, OptionSpec>;

/** Value type of one option; string options with `choices` become the union of the choices. */
export type OptionValue<O extends OptionSpec> = O extends
  { type: "string"; choices: readonly (infer C extends string)[] } ? C
  : O extends { type: "string[]"; choices: readonly (infer C extends string)[] } ? C[]
  : TypeMap[O["type"]];

/** Keys of the options declared `optional: true`. */
export type OptionalKeys<S extends OptionsSpec> = {
  [K in keyof S]: S[K] extends { optional: true } ? K : never;
}[keyof S];

/** The parsed config type for a spec, plus built-ins; optional options are optional keys. */
export type ExperimentConfig<S extends OptionsSpec> =
  & { -readonly [K in Exclude<keyof S, OptionalKeys<S>>]: OptionValue<S[K]> }
  & { -readonly [K in OptionalKeys<S>]?: OptionValue<S[K]> }
  & BuiltinConfig;

/** Flags every experiment gets. */
export interface BuiltinConfig {
  /** Output directory (`--out`). */
  out: string;
  /** Random seed (`--seed`). */
  seed: number;
  /** Print the final summary as one JSON line on stdout (`--json`). */
  json: boolean;
  /** Suppress progress output (`--quiet`). */
  quiet: boolean;
}

/** Per-experiment metadata. */
export interface ExperimentMeta {
  /** Experiment name, used for the default output folder and usage line. */
  name: string;
  /** One-paragraph description for --help. */
  description?: string;
  /** Default seed (0 if omitted). */
  seed?: number;
  /** Root for the default output folder (default "runs"). */
  runsRoot?: string;
  /** Fixed clock for the default `--out` timestamp (tests). */
  now?: Date;
}

/** Usage error: message names the flag and value; `exitCode` is 2. */
export class CliError extends Error {
  readonly exitCode = 2;
  constructor(message: string) {
    super(message);
    this.name = "CliError";
  }
}

/** Thrown by {@link parseExperimentArgsOrThrow} for `--help`; `text` is the usage, `exitCode` 0. */
export class CliHelp extends Error {
  readonly exitCode = 0;
  constructor(readonly text: string) {
    super("help requested");
    this.name = "CliHelp";
  }
}

const BUILTIN_KEYS = ["out", "seed", "json", "quiet", "help"];

/** `batchSize` → `batch-size`. */
export function toFlag(key: string): string {
  return key.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase()).replace(/_/g, "-");
}

/** UTC timestamp `YYYYMMDD-HHMMSS` for run folders. */
export function timestamp(d: Date = new Date()): string {
  return d.toISOString().replace(/\.\d+Z$/, "").replace(/:/g, "").replace(/-/g, "").replace("T", "-");
}

function fmtDefault(v: unknown): string {
  return Array.isArray(v) ? v.join(",") : typeof v === "string" ? JSON.stringify(v) : String(v);
}

function metavarOf(s: OptionSpec): string {
  if (s.metavar) return s.metavar;
  if (s.choices) return s.type.endsWith("[]") ? `{${s.choices.join("|")}},...` : `{${s.choices.join("|")}}`;
  switch (s.type) {
    case "number":
      return "X";
    case "integer":
      return "N";
    case "string":
      return "S";
    case "number[]":
      return "X,...";
    case "integer[]":
      return "N,...";
    case "string[]":
      return "S,...";
    default:
      return "";
  }
}

/** Generated usage text for `--help`. */
export function usage(spec: OptionsSpec, meta: ExperimentMeta): string {
  const rows: [string, string][] = [];
  for (const [key, s] of Object.entries(spec)) {
    const flag = toFlag(key);
    const left = `${s.short ? `-${s.short}, ` : "    "}--${flag}${
      s.type === "boolean" ? "" : ` ${metavarOf(s)}`
    }`;
    const bounds = [
      s.min !== undefined ? `min ${s.min}` : "",
      s.max !== undefined ? `max ${s.max}` : "",
    ].filter(Boolean).join(", ");
    const neg = s.type === "boolean" ? ` (--no-${flag} to disable)` : "";
    const bracket = s.optional ? bounds : `default: ${fmtDefault(s.default)}${bounds ? `; ${bounds}` : ""}`;
    rows.push([left, `${s.description}${neg}${bracket ? ` [${bracket}]` : ""}`]);
  }
  rows.push(
    ["    --out DIR", `output folder [default: ${meta.runsRoot ?? "runs"}/${meta.name}-<UTC timestamp>]`],
    ["    --seed N", `random seed [default: ${meta.seed ?? 0}]`],
    ["    --json", "print the final summary as one JSON line on stdout"],
    ["    --quiet", "no progress output on stderr"],
    ["-h, --help", "show this help and exit"],
  );
  const w = Math.min(36, Math.max(...rows.map(([l]) => l.length)) + 2);
  const lines = rows.map(([l, r]) =>
    l.length + 2 > w ? `  ${l}\n  ${" ".repeat(w)}${r}` : `  ${l.padEnd(w)}${r}`
  );
  return [
    `Usage: ${meta.name} [options]`,
    ...(meta.description ? ["", meta.description] : []),
    "",
    "Options:",
    ...lines,
    "",
  ].join("\n");
}

function coerceScalar(
  flag: string,
  raw: string,
  type: "number" | "integer" | "string",
  s: OptionSpec,
): number | string {
  if (type === "string") {
    if (s.choices && !s.choices.includes(raw)) {
      throw new CliError(`--${flag}: invalid value "${raw}" (choose from: ${s.choices.join(", ")})`);
    }
    return raw;
  }
  const t = raw.trim();
  const v = t === "" ? NaN : Number(t);
  if (!Number.isFinite(v)) {
    throw new CliError(`--${flag}: expected ${type === "integer" ? "an integer" : "a number"}, got "${raw}"`);
  }
  if (type === "integer" && !Number.isSafeInteger(v)) {
    throw new CliError(`--${flag}: expected an integer, got "${raw}"`);
  }
  if (s.min !== undefined && v < s.min) {
    throw new CliError(`--${flag}: value ${raw} is below the minimum ${s.min} (must be ≥ ${s.min})`);
  }
  if (s.max !== undefined && v > s.max) {
    throw new CliError(`--${flag}: value ${raw} is above the maximum ${s.max}`);
  }
  return v;
}

/**
 * Parse `args` against `spec`; throws {@link CliError} (bad usage) or {@link CliHelp} (`--help`).
 * Use this in tests; scripts normally call {@link parseExperimentArgs}.
 */
export function parseExperimentArgsOrThrow<const S extends OptionsSpec>(
  args: readonly string[],
  spec: S,
  meta: ExperimentMeta,
): ExperimentConfig<S> {
  type PAOpt = { type: "string" | "boolean"; short?: string; multiple?: boolean };
  const options: Record<string, PAOpt> = {
    out: { type: "string" },
    seed: { type: "string" },
    json: { type: "boolean" },
    quiet: { type: "boolean" },
    help: { type: "boolean", short: "h" },
  };
  const flagToKey = new Map<string, string>();
  for (const [key, s] of Object.entries(spec)) {
    const flag = toFlag(key);
    if (BUILTIN_KEYS.includes(key) || BUILTIN_KEYS.includes(flag) || flagToKey.has(flag)) {
      throw new Error(`parseExperimentArgs: option "${key}" (--${flag}) clashes with another option`);
    }
    flagToKey.set(flag, key);
    options[flag] = {
      type: s.type === "boolean" ? "boolean" : "string",
      ...(s.short ? { short: s.short } : {}),
      ...(s.type.endsWith("[]") ? { multiple: true } : {}),
    };
  }
  // `--batch -5`: a negative number after a flag that takes a value is that value (node:util's parseArgs
  // would call it an ambiguous option), so the range check can say what is allowed.
  const joined: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i], next = args[i + 1];
    const name = a.startsWith("--") && !a.includes("=") ? a.slice(2) : null;
    if (name && options[name]?.type === "string" && next !== undefined && /^-(\d|\.\d|Infinity)/.test(next)) {
      joined.push(`${a}=${next}`);
      i++;
    } else joined.push(a);
  }
  let parsed: { values: Record<string, string | boolean | (string | boolean)[] | undefined> };
  try {
    parsed = parseArgs({
      args: joined,
      options,
      strict: true,
      allowPositionals: false,
      allowNegative: true,
    });
  } catch (e) {
    const msg = (e as Error).message.replace(
      /\. To specify a positional argument starting with a '-'.*$/s,
      "",
    );
    throw new CliError(msg);
  }
  const v = parsed.values;
  if (v.help === true) throw new CliHelp(usage(spec, meta));

  const cfg: Record<string, unknown> = {};
  for (const [key, s] of Object.entries(spec)) {
    const flag = toFlag(key);
    const raw = v[flag];
    if (raw === undefined) {
      if (!s.optional) cfg[key] = Array.isArray(s.default) ? [...s.default] : s.default;
      continue;
    }
    if (s.type === "boolean") {
      cfg[key] = raw;
    } else if (s.type.endsWith("[]")) {
      const base = s.type.slice(0, -2) as "number" | "integer" | "string";
      const parts = (raw as string[]).flatMap((r) => r.split(",")).map((p) => p.trim()).filter((p) =>
        p !== ""
      );
      cfg[key] = parts.map((p) => coerceScalar(flag, p, base, s));
    } else {
      if (typeof raw !== "string") throw new CliError(`--${flag}: expects a value`);
      cfg[key] = coerceScalar(flag, raw, s.type as "number" | "integer" | "string", s);
    }
  }
  const seedRaw = v.seed;
  cfg.seed = typeof seedRaw === "string"
    ? coerceScalar("seed", seedRaw, "integer", { type: "integer", default: 0, description: "", min: 0 })
    : meta.seed ?? 0;
  const out = v.out;
  if (typeof out === "string" && out.trim() === "") throw new CliError(`--out: expected a directory, got ""`);
  cfg.out = typeof out === "string"
    ? out
    : join(meta.runsRoot ?? "runs", `${meta.name}-${timestamp(meta.now)}`);
  cfg.json = v.json === true;
  cfg.quiet = v.quiet === true;
  return cfg as ExperimentConfig<S>;
}

/**
 * Parse `args` (normally `Deno.args`) against `spec`. On `--help` prints usage to stdout and exits 0; on a
 * usage error prints `error: <message>` and a hint to stderr and exits 2.
 */
export function parseExperimentArgs<const S extends OptionsSpec>(
  args: readonly string[],
  spec: S,
  meta: ExperimentMeta,
): ExperimentConfig<S> {
  try {
    return parseExperimentArgsOrThrow(args, spec, meta);
  } catch (e) {
    if (e instanceof CliHelp) {
      console.log(e.text);
      Deno.exit(0);
    }
    if (e instanceof CliError) {
      console.error(`error: ${e.message}\nRun with --help for usage.`);
      Deno.exit(2);
    }
    throw e;
  }
}

/** Create the run folder (recursively) and return its path. */
export async function runDir(out: string): Promise<string> {
  await Deno.mkdir(out, { recursive: true });
  return out;
}

/** Write `config` to `<dir>/config.json` atomically; returns the file path. */
export async function saveConfig(dir: string, config: object): Promise<string> {
  const path = join(dir, "config.json");
  await writeJsonAtomic(path, config);
  return path;
}

/**
 * The configuration every option's default gives (lists copied; optional options absent), with `out`,
 * seed 0 and no --json / --quiet: what a script's `run(config)` gets when called from code rather than the command line.
 */
export function defaultConfig<const S extends OptionsSpec>(spec: S, out: string): ExperimentConfig<S> {
  const cfg: Record<string, unknown> = {};
  for (const [key, option] of Object.entries(spec)) {
    if (!option.optional) cfg[key] = Array.isArray(option.default) ? [...option.default] : option.default;
  }
  return { ...cfg, out, seed: 0, json: false, quiet: false } as ExperimentConfig<S>;
}
