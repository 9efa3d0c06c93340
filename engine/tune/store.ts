/**
 * Where the autotuner's cache lives: a JSON file in the user's cache folder where the runtime has files
 * (Deno: `$SUPCON_TUNING_CACHE`, else `$XDG_CACHE_HOME/supcon-webgpu/tuning.json`, else
 * `~/.cache/supcon-webgpu/tuning.json`), in memory otherwise (a page, or no permission to the folder).
 *
 * @module
 */
import { environmentVariable, hostTextFile } from "../environment.ts";
import { TUNING_CACHE_ENV } from "./mode.ts";

/** Persistent text storage of the cache. */
export interface TuningStore {
  /** Where (a path, or "memory"). */
  readonly location: string;
  /** Why it is not a file, when it is not (e.g. no permission); else null. */
  readonly note: string | null;
  /** The stored text, or null when none. */
  load(): Promise<string | null>;
  /** Replaces the stored text. */
  save(text: string): Promise<void>;
}

/** A store that lives as long as the process or page. */
export function memoryStore(note: string | null = null): TuningStore {
  let text: string | null = null;
  return {
    location: "memory",
    note,
    load: () => Promise.resolve(text),
    save: (t) => {
      text = t;
      return Promise.resolve();
    },
  };
}

/** The default cache file path, or undefined when the environment names no home or cache folder. */
export function defaultCachePath(): string | undefined {
  const explicit = environmentVariable(TUNING_CACHE_ENV);
  if (explicit) return explicit;
  const xdg = environmentVariable("XDG_CACHE_HOME");
  if (xdg) return `${xdg}/supcon-webgpu/tuning.json`;
  const home = environmentVariable("HOME") ?? environmentVariable("USERPROFILE");
  return home ? `${home}/.cache/supcon-webgpu/tuning.json` : undefined;
}

/**
 * The file store at `path` (default: `defaultCachePath()`; read-only, with a note, without `--allow-write` for
 * its folder), or a memory store saying why not (no file system, no `--allow-read` for the path).
 */
export function defaultStore(path = defaultCachePath()): TuningStore {
  if (!path) return memoryStore("no cache folder (set SUPCON_TUNING_CACHE, XDG_CACHE_HOME or HOME)");
  const file = hostTextFile(path);
  if (typeof file === "string") return memoryStore(file);
  const note = file.readOnly && `read-only: ${file.readOnly}`;
  return { location: path, note, load: () => file.read(), save: (t) => file.write(t) };
}
