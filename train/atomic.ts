/**
 * Atomic file writes: data goes to a temporary sibling file (`<path>.tmp-<random>`), is fsynced when the
 * platform allows it, and is then renamed onto the destination, so readers never observe a half-written file
 * (and a crash leaves either the old or the new content, never a mix).
 *
 * A temporary file is never trusted: the rename is the commit point, so a `.tmp-*` file is at best an
 * unverified copy of what a run was writing when it was killed. A forced exit (a second stop signal,
 * train/signals.ts) removes the one in flight; after SIGKILL {@link removeStaleTmpFiles} deletes them
 * when the next run takes the folder's lock (train/lock.ts). Errors name the file
 * ({@link FileWriteError}: disk full, read-only place, …).
 *
 * Works with `--allow-read --allow-write` only.
 * @module
 */

import { basename, dirname, join } from "node:path";
import { faultPoint, onForcedExit } from "./signals.ts";

/** A write that failed, naming the destination and the cause (the underlying error is `cause`). */
export class FileWriteError extends Error {
  /** The error for `path`. */
  constructor(readonly path: string, cause: unknown) {
    super(`cannot write ${path}: ${firstLine(cause)}`, { cause });
    this.name = "FileWriteError";
  }
}

const writeErrors = new WeakSet<object>();

/**
 * True for a {@link FileWriteError} and for the errors {@link writeFileAtomic} rethrows (the original
 * error, of its own class such as `Deno.errors.NotFound`, with the destination named in its message).
 */
export function isFileWriteError(e: unknown): e is Error {
  return e instanceof FileWriteError || (typeof e === "object" && e !== null && writeErrors.has(e));
}

/** `err` with `cannot write <path>: ` before its message (the same object, so its class is kept). */
function namedWriteError(path: string, err: unknown): Error {
  if (isFileWriteError(err)) return err;
  if (!(err instanceof Error)) return new FileWriteError(path, err);
  try {
    err.message = `cannot write ${path}: ${firstLine(err)}`;
    writeErrors.add(err);
    return err;
  } catch {
    return new FileWriteError(path, err);
  }
}

function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split("\n")[0];
}

/** The pattern of a temporary sibling of `name` (or of any file when `name` is omitted). */
export function isTmpFile(file: string, name?: string): boolean {
  const m = /^(.*)\.tmp-[0-9a-z]+$/.exec(file);
  return m !== null && (name === undefined || m[1] === name);
}

/**
 * Removes the `<file>.tmp-*` leftovers of writes killed mid-way (SIGKILL, power loss) in `dir`; call
 * it only while holding the folder's lock (no live writer). Returns the names removed.
 */
export async function removeStaleTmpFiles(dir: string): Promise<string[]> {
  const removed: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      if (!e.isFile || !isTmpFile(e.name)) continue;
      try {
        await Deno.remove(join(dir, e.name));
        removed.push(e.name);
      } catch { /* gone already */ }
    }
  } catch { /* no folder: nothing to clean */ }
  return removed;
}

const encoder = new TextEncoder();

function tmpPathFor(path: string): string {
  const rnd = crypto.getRandomValues(new Uint32Array(2));
  return `${path}.tmp-${rnd[0].toString(36)}${rnd[1].toString(36)}`;
}

function toBytes(data: Uint8Array | string): Uint8Array {
  return typeof data === "string" ? encoder.encode(data) : data;
}

/** Best-effort fsync of the directory holding `path` so the rename itself is durable (ignored where unsupported). */
async function syncDir(path: string): Promise<void> {
  try {
    const d = await Deno.open(dirname(path) || ".", { read: true });
    try {
      await d.sync();
    } finally {
      d.close();
    }
  } catch {
    // Directories cannot be opened/synced on every platform; the rename is still atomic.
  }
}

/**
 * Atomically replace `path` with `data` (bytes or UTF-8 text). The parent directory must exist.
 * `verify`, when given, reads the temporary file back (after fsync) and throws if it is not right;
 * only then is it renamed. On failure the temporary file is removed and the error rethrown (named, see
 * {@link isFileWriteError}); `path` is left untouched.
 */
export async function writeFileAtomic(
  path: string,
  data: Uint8Array | string,
  verify?: (tmpPath: string) => Promise<void>,
): Promise<void> {
  const bytes = toBytes(data);
  const tmp = tmpPathFor(path);
  let file: Deno.FsFile | undefined;
  const unregister = onForcedExit(() => Deno.removeSync(tmp));
  try {
    file = await Deno.open(tmp, { write: true, createNew: true });
    let off = 0;
    while (off < bytes.length) off += await file.write(bytes.subarray(off));
    try {
      await file.sync();
    } catch {
      // fsync not available (e.g. some virtual file systems): proceed, the rename is still atomic.
    }
    file.close();
    file = undefined;
    if (verify) await verify(tmp);
    await faultPoint(`write:${basename(path)}`);
    await Deno.rename(tmp, path);
  } catch (err) {
    try {
      file?.close();
    } catch { /* already closed */ }
    try {
      await Deno.remove(tmp);
    } catch { /* never created or already renamed */ }
    throw namedWriteError(path, err);
  } finally {
    unregister();
  }
  await syncDir(path);
}

/** Synchronous variant of {@link writeFileAtomic} (for exit handlers and tight loops). */
export function writeFileAtomicSync(path: string, data: Uint8Array | string): void {
  const bytes = toBytes(data);
  const tmp = tmpPathFor(path);
  let file: Deno.FsFile | undefined;
  const unregister = onForcedExit(() => Deno.removeSync(tmp));
  try {
    file = Deno.openSync(tmp, { write: true, createNew: true });
    let off = 0;
    while (off < bytes.length) off += file.writeSync(bytes.subarray(off));
    try {
      file.syncSync();
    } catch { /* see writeFileAtomic */ }
    file.close();
    file = undefined;
    Deno.renameSync(tmp, path);
  } catch (err) {
    try {
      file?.close();
    } catch { /* already closed */ }
    try {
      Deno.removeSync(tmp);
    } catch { /* never created or already renamed */ }
    throw namedWriteError(path, err);
  } finally {
    unregister();
  }
}

/**
 * JSON.stringify replacer that makes experiment outputs serialisable: typed arrays become plain arrays,
 * bigints become numbers (or strings when unsafe), non-finite numbers become null (as JSON.stringify does),
 * Maps become objects and Sets arrays.
 */
export function jsonReplacer(_key: string, value: unknown): unknown {
  if (typeof value === "bigint") {
    return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
  }
  if (ArrayBuffer.isView(value) && !(value instanceof DataView)) {
    return Array.from(
      value as unknown as ArrayLike<number | bigint>,
      (v) => typeof v === "bigint" ? Number(v) : v,
    );
  }
  if (value instanceof Map) return Object.fromEntries(value);
  if (value instanceof Set) return [...value];
  return value;
}

/** Serialise `value` as pretty JSON (trailing newline) and write it atomically. */
export async function writeJsonAtomic(path: string, value: unknown, indent = 2): Promise<void> {
  await writeFileAtomic(path, JSON.stringify(value, jsonReplacer, indent) + "\n");
}

/** Synchronous variant of {@link writeJsonAtomic}. */
export function writeJsonAtomicSync(path: string, value: unknown, indent = 2): void {
  writeFileAtomicSync(path, JSON.stringify(value, jsonReplacer, indent) + "\n");
}
