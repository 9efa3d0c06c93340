/**
 * Atomic file writes: data goes to a temporary sibling file (`<path>.tmp-<random>`), is fsynced when the
 * platform allows it, and is then renamed onto the destination, so readers never observe a half-written file
 * (and a crash leaves either the old or the new content, never a mix).
 *
 * Works with `--allow-read --allow-write` only.
 * @module
 */

import { dirname } from "node:path";

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
 * On failure the temporary file is removed and the error rethrown; `path` is left untouched.
 */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const bytes = toBytes(data);
  const tmp = tmpPathFor(path);
  let file: Deno.FsFile | undefined;
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
    await Deno.rename(tmp, path);
  } catch (err) {
    try {
      file?.close();
    } catch { /* already closed */ }
    try {
      await Deno.remove(tmp);
    } catch { /* never created or already renamed */ }
    throw err;
  }
  await syncDir(path);
}

/** Synchronous variant of {@link writeFileAtomic} (for exit handlers and tight loops). */
export function writeFileAtomicSync(path: string, data: Uint8Array | string): void {
  const bytes = toBytes(data);
  const tmp = tmpPathFor(path);
  let file: Deno.FsFile | undefined;
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
    throw err;
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
