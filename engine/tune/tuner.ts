/**
 * The autotuner: for each shape class of a tunable op (a "site", e.g. one GEMM's sizes and hooks), which
 * candidate kernel to run on this adapter.
 *
 * Choosing is synchronous and cheap (ops call it while recording): a decision made earlier in the process,
 * else the cache's winner (modes "cached" and "measure"), else the heuristic. In mode "measure" a site the
 * cache lacks is queued; `measurePending()` (awaited between training steps by `train/loop.ts`, and by
 * `deno task tune`) times its candidates on scratch buffers, keeps the fastest, and saves the cache. Every
 * candidate computes the same result up to float32 summation order, so tuning never changes a result beyond
 * that.
 *
 * @module
 */
import type { Gpu } from "../gpu.ts";
import { TuningCache, type TuningEntry } from "./cache.ts";
import { memoryStore, type TuningStore } from "./store.ts";
import type { TuningMode } from "./mode.ts";
import { type CandidateTime, timeCandidate, type TimingOptions } from "./timing.ts";

/** Records candidates of one site on scratch buffers (made by `TuneSite.prepare`). */
export interface SiteRunner {
  /** Records one call of `candidate`. */
  record(candidate: string): void;
  /** Frees the scratch buffers. */
  dispose(): void;
}

/** One shape class of a tunable op. */
export interface TuneSite {
  /** Cache key: op, sizes and everything else that selects the kernels (stable across runs). */
  key: string;
  /** Short human-readable name (op and sizes). */
  label: string;
  /** The heuristic's candidate (timed first). */
  heuristic: string;
  /** Candidate ids, the heuristic among them. */
  candidates: string[];
  /** Allocates scratch inputs and outputs to time candidates on. */
  prepare(): SiteRunner;
}

/** What was decided for a site. */
export interface TuneDecision {
  /** The site's label. */
  label: string;
  /** The candidate used. */
  choice: string;
  /** The heuristic's candidate. */
  heuristic: string;
  /** Where the choice came from. */
  source: "heuristic" | "cached" | "measured";
  /** The measured entry, when there is one. */
  entry?: TuningEntry;
}

/**
 * A candidate's family: the letters its id starts with (`reg…` register blocks, `wg…` workgroup tiles); when
 * the first of a family timed is more than twice slower than the best so far, its siblings are not timed.
 */
export function candidateFamily(id: string): string {
  return /^[a-z]+/i.exec(id)?.[0] ?? id;
}

/** The autotuner of one device (`gpu().tuner`). */
export class Tuner {
  /** The mode (see `engine/tune/mode.ts`); assignable. */
  mode: TuningMode = "cached";
  /** Milliseconds spent timing one site at most: candidates left when it runs out are not timed. */
  capMs = 3000;
  /** A candidate replaces the heuristic only when it is faster by more than this fraction (noise). */
  margin = 0.03;
  /**
   * Interleaved rounds (heuristic, challenger) that confirm a challenger before it replaces the heuristic
   * (0: none); it must win the medians by more than `margin` too.
   */
  verifyRounds = 3;
  /** Measure every site again, ignoring cached winners (`deno task tune --fresh`); results are still saved. */
  remeasure = false;
  /** Timing options. */
  timing: TimingOptions = {};
  /** Where the cache is kept. */
  store: TuningStore = memoryStore();
  /** The last warning (a corrupt cache replaced, a cache that could not be saved), or null. */
  warning: string | null = null;
  #cache: TuningCache;
  #decided = new Map<string, TuneDecision>();
  #pending = new Map<string, TuneSite>();
  /** Sites of the batch being measured (timing a route records its pass, which must not queue them again). */
  #measuring = new Set<string>();

  /** The tuner of `gpu`'s device. */
  constructor(private readonly gpu: Gpu) {
    this.#cache = new TuningCache(gpu.report);
  }

  /** Selects `mode` and `store` and loads its cache; a corrupt cache is replaced, with a warning. */
  async open(mode: TuningMode, store: TuningStore = this.store): Promise<void> {
    this.mode = mode;
    this.store = store;
    this.#cache = new TuningCache(this.gpu.report);
    this.#decided.clear();
    this.#pending.clear();
    if (mode === "off") return;
    let text: string | null = null;
    try {
      text = await store.load();
    } catch (e) {
      this.#warn(`tuning cache ${store.location} is unreadable (${(e as Error).message}); using none`);
      return;
    }
    const why = this.#cache.load(text);
    if (why) {
      this.#warn(`tuning cache ${store.location} is corrupt (${why}); replacing it with an empty one`);
      await this.#save(null);
    }
  }

  #warn(message: string): void {
    this.warning = message;
    console.warn(`warning: ${message}`);
  }

  async #save(current: string | null): Promise<void> {
    try {
      await this.store.save(this.#cache.serialize(current));
    } catch (e) {
      this.#warn(`tuning cache ${this.store.location} could not be written (${(e as Error).message})`);
    }
  }

  /**
   * Whether `choose` can return anything but the heuristic: mode "measure", or a cache or decision to draw on.
   * Callers skip building a site (hashing its kernel strings) when it cannot: the default mode with an empty
   * cache costs a recorded step nothing.
   */
  get active(): boolean {
    return this.mode === "measure" ||
      (this.mode === "cached" && (this.#decided.size > 0 || this.#cache.size > 0));
  }

  /** The candidate to run for `site` now (see the module doc). */
  choose(site: TuneSite): string {
    if (this.mode === "off") return site.heuristic;
    const decided = this.#decided.get(site.key);
    if (decided) return decided.choice;
    const entry = this.remeasure ? undefined : this.#cache.get(site.key);
    if (entry && site.candidates.includes(entry.winner)) {
      const d: TuneDecision = {
        label: site.label,
        choice: entry.winner,
        heuristic: site.heuristic,
        source: "cached",
        entry,
      };
      this.#decided.set(site.key, d);
      return d.choice;
    }
    if (this.mode === "measure" && !this.#measuring.has(site.key)) this.#pending.set(site.key, site);
    return site.heuristic;
  }

  /** Sites queued for measurement. */
  get pendingCount(): number {
    return this.#pending.size;
  }

  /** Every decision made so far (measured and cached ones; heuristic ones of measured-mode sites). */
  decisions(): TuneDecision[] {
    return [...this.#decided.values()];
  }

  /**
   * Times the candidates of every queued site (heuristic first, at most `capMs` per site), records the
   * winners, and saves the cache. Pending GPU work is finished first. Returns the new decisions. With
   * `limit`, only the first `limit` queued sites are measured; the others stay queued.
   */
  async measurePending(onSite?: (d: TuneDecision) => void, limit = Infinity): Promise<TuneDecision[]> {
    const sites = [...this.#pending.values()].slice(0, limit);
    for (const site of sites) {
      this.#pending.delete(site.key);
      this.#measuring.add(site.key);
    }
    const out: TuneDecision[] = [];
    try {
      for (const site of sites) {
        const d = await this.#measure(site);
        this.#decided.set(site.key, d);
        out.push(d);
        onSite?.(d);
      }
    } finally {
      for (const site of sites) this.#measuring.delete(site.key);
    }
    if (sites.length) {
      let current: string | null = null;
      try {
        current = await this.store.load();
      } catch { /* merged with nothing: this process's entries are written */ }
      await this.#save(current);
    }
    return out;
  }

  async #measure(site: TuneSite): Promise<TuneDecision> {
    const ms: Record<string, number | null> = {};
    let method: CandidateTime["method"] = "wall";
    let winner = site.heuristic;
    let verified: { heuristic: number; winner: number } | null = null;
    const start = performance.now();
    const runner = site.prepare();
    try {
      const order = [site.heuristic, ...site.candidates.filter((c) => c !== site.heuristic)];
      const losing = new Set<string>(); // families whose first candidate timed lost by more than 2×
      for (const c of order) {
        if (c !== site.heuristic && performance.now() - start > this.capMs) break;
        const best = Math.min(...Object.values(ms).filter((v): v is number => v !== null));
        const family = candidateFamily(c);
        if (losing.has(family)) continue;
        try {
          const t = await timeCandidate(this.gpu, () => runner.record(c), {
            ...this.timing,
            giveUpAboveMs: Number.isFinite(best) ? 3 * best : undefined,
          });
          ms[c] = t.ms;
          method = t.method;
          // The first of a family (e.g. workgroup tiles on a CPU adapter) far behind: skip its siblings.
          if (
            t.ms > 2 * best && !order.slice(0, order.indexOf(c)).some((p) => candidateFamily(p) === family)
          ) {
            losing.add(family);
          }
        } catch {
          ms[c] = null; // a candidate this device cannot run is never chosen
        }
      }
      // The heuristic keeps its place unless another candidate beats it by more than the noise margin...
      const base = ms[site.heuristic];
      let bestMs = base === null || base === undefined ? Infinity : base * (1 - this.margin);
      for (const [c, t] of Object.entries(ms)) {
        if (t !== null && t < bestMs) [winner, bestMs] = [c, t];
      }
      // ...and again when the two are timed interleaved (H C, C H, H C: the load of a shared machine
      // drifts between candidates timed seconds apart, and the fastest of several noisy times is biased low).
      if (winner !== site.heuristic && base !== null && base !== undefined && this.verifyRounds > 0) {
        verified = await this.#confirm(runner, site.heuristic, winner);
        if (verified && !(verified.winner < verified.heuristic * (1 - this.margin))) winner = site.heuristic;
      }
    } finally {
      runner.dispose();
    }
    const entry: TuningEntry = {
      winner,
      heuristic: site.heuristic,
      ms,
      method,
      at: new Date().toISOString(),
      ...(verified ? { verified } : {}),
    };
    if (Object.values(ms).some((t) => t !== null)) this.#cache.set(site.key, entry);
    return { label: site.label, choice: winner, heuristic: site.heuristic, source: "measured", entry };
  }

  /** Median times of `heuristic` and `challenger` timed in alternation (`verifyRounds` pairs), or null. */
  async #confirm(
    runner: SiteRunner,
    heuristic: string,
    challenger: string,
  ): Promise<{ heuristic: number; winner: number } | null> {
    const h: number[] = [];
    const c: number[] = [];
    const once = async (id: string) =>
      (await timeCandidate(this.gpu, () => runner.record(id), { ...this.timing, samples: 1 })).ms;
    try {
      for (let r = 0; r < this.verifyRounds; r++) {
        if (r % 2 === 0) {
          h.push(await once(heuristic));
          c.push(await once(challenger));
        } else {
          c.push(await once(challenger));
          h.push(await once(heuristic));
        }
      }
    } catch {
      return null;
    }
    const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
    return { heuristic: median(h), winner: median(c) };
  }
}
