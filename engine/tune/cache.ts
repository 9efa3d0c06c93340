/**
 * The autotuner's cache: per adapter and engine version, the winning kernel of each shape class and the
 * times it was chosen on. Pure data (parse, look up, record, merge, serialise); where it is stored is
 * `engine/tune/store.ts`'s job.
 *
 * File format (`supcon-webgpu/tuning/1`):
 * ```json
 * { "format": "supcon-webgpu/tuning/1",
 *   "adapters": { "<adapter key>": { "adapter": {...}, "version": "0.5.0",
 *     "entries": { "<site key>": { "winner": "reg32x128x4t16x16", "heuristic": "...",
 *       "ms": { "<candidate>": 1.25 }, "method": "timestamp", "at": "2026-12-07T08:00:00Z" } } } } }
 * ```
 * An adapter's entries recorded by another engine version are ignored (and replaced when measured again).
 *
 * @module
 */
import type { AdapterReport } from "../device.ts";
import { VERSION } from "../version.ts";

/** The format tag of the cache file. */
export const TUNING_FORMAT = "supcon-webgpu/tuning/1";

/** One measured shape class. */
export interface TuningEntry {
  /** The fastest candidate's id. */
  winner: string;
  /** The heuristic's candidate id at the time. */
  heuristic: string;
  /** Median milliseconds per call of each candidate timed (null: it failed to run). */
  ms: Record<string, number | null>;
  /** How the times were taken. */
  method: "timestamp" | "wall";
  /** When (ISO 8601). */
  at: string;
  /**
   * Median times of the heuristic and the challenger timed in alternation (only when a candidate beat the
   * heuristic in the first timing; `winner` is the heuristic when the challenger did not hold up).
   */
  verified?: { heuristic: number; winner: number };
}

interface AdapterSection {
  adapter: Record<string, string>;
  version: string;
  entries: Record<string, TuningEntry>;
}

interface CacheFile {
  format: string;
  adapters: Record<string, AdapterSection>;
}

/** The identity of an adapter: what it reports about itself (WebGPU exposes no driver version beyond it). */
export function adapterIdentity(report: AdapterReport): Record<string, string> {
  return {
    vendor: report.vendor ?? "",
    architecture: report.architecture ?? "",
    device: report.device ?? "",
    description: report.description ?? report.name,
  };
}

/** The cache key of an adapter. */
export function adapterKey(report: AdapterReport): string {
  return Object.values(adapterIdentity(report)).join("|");
}

function isEntry(e: unknown): e is TuningEntry {
  const x = e as TuningEntry;
  return typeof x === "object" && x !== null && typeof x.winner === "string" &&
    typeof x.heuristic === "string" && typeof x.ms === "object" && x.ms !== null &&
    (x.method === "timestamp" || x.method === "wall") && typeof x.at === "string";
}

/** Why `text` is not a valid cache file, or null. */
function invalid(data: unknown): string | null {
  const f = data as CacheFile;
  if (typeof f !== "object" || f === null) return "not a JSON object";
  if (f.format !== TUNING_FORMAT) return `format ${JSON.stringify(f.format)} is not ${TUNING_FORMAT}`;
  if (typeof f.adapters !== "object" || f.adapters === null) return "no adapters object";
  for (const [key, s] of Object.entries(f.adapters)) {
    if (typeof s?.version !== "string" || typeof s.entries !== "object" || s.entries === null) {
      return `adapter ${JSON.stringify(key)} has no version or entries`;
    }
    for (const [site, e] of Object.entries(s.entries)) {
      if (!isEntry(e)) return `entry ${JSON.stringify(site)} of adapter ${JSON.stringify(key)} is malformed`;
    }
  }
  return null;
}

/** The measured choices of every adapter, with this process's adapter and engine version selected. */
export class TuningCache {
  #file: CacheFile = { format: TUNING_FORMAT, adapters: {} };
  #key: string;
  #identity: Record<string, string>;
  /** Entries recorded by this process (merged into the file on save). */
  #recorded = new Map<string, TuningEntry>();

  /** An empty cache for `report`'s adapter. */
  constructor(report: AdapterReport, readonly version: string = VERSION) {
    this.#key = adapterKey(report);
    this.#identity = adapterIdentity(report);
  }

  /**
   * Loads `text` (a cache file); returns why it was rejected (then the cache starts empty), or null. An
   * empty or absent file (`null`) is not an error.
   */
  load(text: string | null): string | null {
    this.#file = { format: TUNING_FORMAT, adapters: {} };
    if (text === null || text.trim() === "") return null;
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch (e) {
      return `not valid JSON (${(e as Error).message})`;
    }
    const why = invalid(data);
    if (why) return why;
    this.#file = data as CacheFile;
    for (const [site, e] of this.#recorded) this.#section().entries[site] = e;
    return null;
  }

  #section(): AdapterSection {
    let s = this.#file.adapters[this.#key];
    if (!s || s.version !== this.version) {
      s = { adapter: this.#identity, version: this.version, entries: {} };
      this.#file.adapters[this.#key] = s;
    }
    return s;
  }

  /** The entry of `site` for this adapter and version, or undefined. */
  get(site: string): TuningEntry | undefined {
    const s = this.#file.adapters[this.#key];
    return s && s.version === this.version ? s.entries[site] : undefined;
  }

  /** Records a measurement of `site`. */
  set(site: string, entry: TuningEntry): void {
    this.#recorded.set(site, entry);
    this.#section().entries[site] = entry;
  }

  /** Entries of this adapter and version. */
  entries(): [string, TuningEntry][] {
    const s = this.#file.adapters[this.#key];
    return s && s.version === this.version ? Object.entries(s.entries) : [];
  }

  /** Entries of this adapter and version. */
  get size(): number {
    const s = this.#file.adapters[this.#key];
    return s && s.version === this.version ? Object.keys(s.entries).length : 0;
  }

  /** Whether this process recorded anything. */
  get dirty(): boolean {
    return this.#recorded.size > 0;
  }

  /**
   * The file text to write: `current` (the file as it is now on disk, possibly written meanwhile by another
   * process; ignored when invalid) with this process's recorded entries merged in.
   */
  serialize(current: string | null): string {
    const merged = new TuningCache({ ...this.#identityReport() }, this.version);
    merged.#recorded = this.#recorded;
    if (merged.load(current) !== null) merged.load(null);
    for (const [site, e] of this.#recorded) merged.#section().entries[site] = e;
    merged.#section(); // keep this adapter's section even when nothing was recorded
    return JSON.stringify(merged.#file, null, 1) + "\n";
  }

  #identityReport(): AdapterReport {
    const id = this.#identity;
    return {
      name: id.description,
      vendor: id.vendor,
      architecture: id.architecture,
      device: id.device,
      description: id.description,
      isFallback: false,
      limits: {},
      features: [],
    };
  }
}
