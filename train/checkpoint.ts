/**
 * Checkpoints in safetensors format, written atomically (a crash leaves the old file or the new one):
 *
 * - every module's parameters and buffers under its prefix and PyTorch names (`conv1.weight`,
 *   `classifier.weight`, …), plus an I64 `num_batches_tracked` beside each BatchNorm's `running_mean`,
 *   so `model.load_state_dict(safetensors.torch.load_file(path), strict=False)` loads them;
 * - SGD momentum buffers as `optimizer.momentum.<parameter name>`;
 * - `__metadata__`: `format`, `step`, the caller's own entries, `state` (JSON), `final` and `checksum`.
 *
 * Everything is read back from the GPU with one readback, and nothing is written when a value is not
 * finite ({@link NonFiniteCheckpointError}): the last good checkpoint stays in place.
 *
 * Verified: `checksum` is `sha256:<hex>` over every tensor (name, dtype, shape, bytes) and every other
 * metadata entry (so the step, the run's config and its hash, and the resumable state are covered);
 * {@link readCheckpointFile} recomputes it and refuses a file that does not match, and refuses
 * non-finite parameters, naming the tensors ({@link CheckpointError}).
 * @module
 */
import { gpu } from "../engine/gpu.ts";
import { empty, type Tensor } from "../engine/tensor.ts";
import type { SGD } from "../engine/optim/sgd.ts";
import {
  decodeSafetensors,
  encodeSafetensors,
  loadSafetensors,
  type Tensor as StTensor,
} from "./safetensors.ts";
import { writeFileAtomic } from "./atomic.ts";

/** A checkpoint that cannot be used: damaged, edited, of another kind, or holding non-finite values. */
export class CheckpointError extends Error {
  /** The error for the file `path`. */
  constructor(readonly path: string, detail: string, options?: ErrorOptions) {
    super(`${path}: ${detail}`, options);
    this.name = "CheckpointError";
  }
}

/** The metadata key of the checksum. */
export const CHECKSUM_KEY = "checksum";

/**
 * `sha256:<hex>` of a checkpoint's content: each tensor in name order (name, dtype, shape, then its
 * bytes), then each metadata entry but the checksum itself in key order. Web-standard (crypto.subtle).
 */
export async function checkpointDigest(
  tensors: Record<string, StTensor>,
  metadata: Record<string, string>,
): Promise<string> {
  const enc = new TextEncoder();
  const parts: Uint8Array[] = [];
  for (const name of Object.keys(tensors).sort()) {
    const t = tensors[name];
    parts.push(enc.encode(`${name}\0${t.dtype}\0${t.shape.join(",")}\0`));
    parts.push(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  }
  for (const key of Object.keys(metadata).sort()) {
    if (key !== CHECKSUM_KEY) parts.push(enc.encode(`${key}\0${metadata[key]}\0`));
  }
  const all = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let off = 0;
  for (const p of parts) {
    all.set(p, off);
    off += p.length;
  }
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", all));
  return "sha256:" + Array.from(hash, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Names of the floating-point tensors holding NaN or ±Infinity. */
export function nonFiniteTensors(tensors: Record<string, StTensor>): string[] {
  const bad: string[] = [];
  for (const [name, t] of Object.entries(tensors)) {
    if (t.dtype !== "F32" && t.dtype !== "F64") continue;
    const d = t.data as Float32Array | Float64Array;
    for (let i = 0; i < d.length; i++) {
      if (!Number.isFinite(d[i])) {
        bad.push(name);
        break;
      }
    }
  }
  return bad;
}

/** Prefix of momentum buffers in a checkpoint. */
export const MOMENTUM_PREFIX = "optimizer.momentum.";

/**
 * Reads many tensors back with ONE readback: records copies into a staging tensor, then reads it.
 * Returns a copy of each tensor's values (in order).
 */
export async function readTensors(tensors: readonly Tensor[]): Promise<Float32Array[]> {
  const total = tensors.reduce((s, t) => s + t.size, 0);
  if (total === 0) return tensors.map(() => new Float32Array(0));
  const staging = empty([total]);
  try {
    let offset = 0;
    for (const t of tensors) {
      if (t.size > 0) {
        const src = { ...t.range, size: t.size * 4 };
        gpu().copy(src, {
          buffer: staging.range.buffer,
          offset: staging.range.offset + offset * 4,
          size: t.size * 4,
        });
      }
      offset += t.size;
    }
    const all = new Float32Array(await gpu().read(staging.range), 0, total);
    const out: Float32Array[] = [];
    offset = 0;
    for (const t of tensors) {
      out.push(all.slice(offset, offset + t.size));
      offset += t.size;
    }
    return out;
  } finally {
    staging.dispose();
  }
}

/** Thrown when a checkpoint would contain NaN or infinite values (it is then not written). */
export class NonFiniteCheckpointError extends Error {
  /** The error naming the tensors with non-finite values. */
  constructor(readonly names: string[]) {
    super(
      `checkpoint not written: non-finite values in ${names.slice(0, 5).join(", ")}${
        names.length > 5 ? ", …" : ""
      }`,
    );
    this.name = "NonFiniteCheckpointError";
  }
}

/** What a checkpoint holds besides the tensors' values. */
export interface CheckpointContents {
  /** Named tensors on the GPU, in file order (module tensors, then momentum buffers). */
  named: readonly [string, Tensor][];
  /** The `format` metadata value. */
  format: string;
  /** Completed steps (also the value of every `num_batches_tracked`). */
  step: number;
  /** Further metadata strings, stored between `step` and `state`. */
  metadata?: Record<string, string>;
  /** Resumable state, stored as JSON. */
  state: unknown;
  /** True for the last checkpoint of a completed run. */
  final: boolean;
}

/** The tensors and metadata of a checkpoint, or null when some value is not finite (nothing to save). */
export interface CheckpointPayload {
  /** Tensors by name. */
  tensors: Record<string, StTensor>;
  /** Metadata strings. */
  metadata: Record<string, string>;
  /** Names of tensors holding NaN or ±Infinity (the payload must not be written then). */
  nonFinite: string[];
}

/** Reads every tensor back (one readback) and assembles the payload. */
export async function checkpointPayload(c: CheckpointContents): Promise<CheckpointPayload> {
  const values = await readTensors(c.named.map(([, t]) => t));
  const tensors: Record<string, StTensor> = {};
  const nonFinite: string[] = [];
  c.named.forEach(([name, t], k) => {
    const data = values[k];
    for (let i = 0; i < data.length; i++) {
      if (!Number.isFinite(data[i])) {
        nonFinite.push(name);
        break;
      }
    }
    if (name in tensors) throw new Error(`checkpoint: tensor name "${name}" occurs twice`);
    tensors[name] = { dtype: "F32", shape: [...t.shape], data };
  });
  // PyTorch's BatchNorm2d also has a num_batches_tracked buffer (I64 scalar).
  for (const name of Object.keys(tensors)) {
    if (!name.endsWith(".running_mean") || name.startsWith(MOMENTUM_PREFIX)) continue;
    const key = name.slice(0, -".running_mean".length) + ".num_batches_tracked";
    tensors[key] = { dtype: "I64", shape: [], data: BigInt64Array.of(BigInt(c.step)) };
  }
  const metadata: Record<string, string> = {
    format: c.format,
    step: String(c.step),
    ...c.metadata,
    state: JSON.stringify(c.state),
    final: String(c.final),
  };
  metadata[CHECKSUM_KEY] = await checkpointDigest(tensors, metadata);
  return { tensors, metadata, nonFinite };
}

/** Where the checkpoint before the newest is kept: `checkpoint.safetensors` → `checkpoint.prev.safetensors`. */
export function previousCheckpointPath(path: string): string {
  return /\.safetensors$/.test(path) ? path.replace(/\.safetensors$/, ".prev.safetensors") : `${path}.prev`;
}

/**
 * Writes a checkpoint atomically to `path`, keeping the one it replaces as
 * {@link previousCheckpointPath} (a hard link, so `path` is never absent) and renaming the new one into
 * place only once it has been read back from disk and its checksum verified. Refuses (throws
 * {@link NonFiniteCheckpointError}, leaving any existing file untouched) when a value is NaN or
 * infinite.
 */
export async function writeCheckpoint(path: string, contents: CheckpointContents): Promise<void> {
  const payload = await checkpointPayload(contents);
  if (payload.nonFinite.length) throw new NonFiniteCheckpointError(payload.nonFinite);
  const bytes = encodeSafetensors(payload.tensors, payload.metadata);
  const prev = previousCheckpointPath(path);
  try {
    await Deno.stat(path);
    try {
      await Deno.remove(prev);
    } catch { /* none yet */ }
    try {
      await Deno.link(path, prev);
    } catch {
      await Deno.copyFile(path, prev);
    }
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  await writeFileAtomic(path, bytes, async (tmp) => {
    const back = decodeSafetensors(await Deno.readFile(tmp), tmp);
    if (await checkpointDigest(back.tensors, back.metadata) !== payload.metadata[CHECKSUM_KEY]) {
      throw new CheckpointError(path, "the checkpoint read back from disk does not match what was written");
    }
  });
}

/** A checkpoint file as read from disk (no GPU needed). */
export interface CheckpointFile {
  /** Completed steps. */
  step: number;
  /** True for the last checkpoint of a completed run. */
  final: boolean;
  /** Every metadata string. */
  metadata: Record<string, string>;
  /** The parsed `state`. */
  state: unknown;
  /** Every tensor by name. */
  tensors: Record<string, StTensor>;
}

/** Parses metadata entry `key` as JSON, naming the file and the entry when it is absent or invalid. */
export function parseMetadataJson<T>(path: string, key: string, text: string | undefined): T {
  if (text === undefined) throw new CheckpointError(path, `checkpoint metadata has no "${key}"`);
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new CheckpointError(
      path,
      `checkpoint metadata "${key}" is not valid JSON: ${(e as Error).message}`,
    );
  }
}

/**
 * Reads and verifies a checkpoint file; with `format`, refuses a file of another format (`what` names
 * the expected kind in the message). Throws {@link CheckpointError} (naming the file) for a damaged or
 * truncated file, a checksum that does not match (with `requireChecksum`, also a missing one), a bad
 * step, or non-finite values (naming the tensors).
 */
export async function readCheckpointFile(
  path: string,
  format?: string,
  what = "training",
  options: { requireChecksum?: boolean } = {},
): Promise<CheckpointFile> {
  let file;
  try {
    file = await loadSafetensors(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new CheckpointError(path, "no such file", { cause: e });
    const msg = (e as Error).message.replace(`safetensors: ${path}`, "safetensors").replace(
      /^safetensors: /,
      "",
    );
    throw new CheckpointError(path, `damaged checkpoint: ${msg}`, { cause: e });
  }
  const md = file.metadata;
  if (format !== undefined && md.format !== format) {
    throw new CheckpointError(
      path,
      `not a ${what} checkpoint (format ${JSON.stringify(md.format)}, expected ${format})`,
    );
  }
  if (md[CHECKSUM_KEY] !== undefined) {
    const digest = await checkpointDigest(file.tensors, md);
    if (digest !== md[CHECKSUM_KEY]) {
      throw new CheckpointError(
        path,
        "checksum mismatch: the file was modified or damaged after it was written (tensors or metadata)",
      );
    }
  } else if (options.requireChecksum) {
    throw new CheckpointError(path, "no checksum in the metadata (not written by this trainer, or edited)");
  }
  const step = Number(md.step);
  if (!Number.isInteger(step) || step < 0) {
    throw new CheckpointError(path, `bad step ${JSON.stringify(md.step)} in metadata`);
  }
  const bad = nonFiniteTensors(file.tensors);
  if (bad.length) {
    throw new CheckpointError(
      path,
      `non-finite values (NaN or ±Infinity) in ${bad.slice(0, 5).join(", ")}${bad.length > 5 ? ", …" : ""}`,
    );
  }
  return {
    step,
    final: md.final === "true",
    metadata: md,
    state: parseMetadataJson(path, "state", md.state),
    tensors: file.tensors,
  };
}

/**
 * Entries of `tensors` under `prefix`, with the prefix removed, as a state dict (F32 only). With the
 * empty prefix, names starting with one of `exclude` (other modules, momentum) are left out.
 */
export function stateDictFrom(
  tensors: Record<string, StTensor>,
  prefix = "",
  exclude: readonly string[] = [MOMENTUM_PREFIX],
): Record<string, { shape: number[]; data: Float32Array }> {
  const out: Record<string, { shape: number[]; data: Float32Array }> = {};
  for (const [name, t] of Object.entries(tensors)) {
    if (!name.startsWith(prefix)) continue;
    if (prefix === "" && exclude.some((p) => name.startsWith(p))) continue;
    if (t.dtype !== "F32") continue; // num_batches_tracked
    out[name.slice(prefix.length)] = { shape: t.shape, data: t.data as Float32Array };
  }
  return out;
}

/** The momentum buffers of a checkpoint by parameter name (host copies). */
export function momentumTensors(tensors: Record<string, StTensor>): Record<string, Float32Array> {
  const out: Record<string, Float32Array> = {};
  for (const [name, t] of Object.entries(tensors)) {
    if (name.startsWith(MOMENTUM_PREFIX)) out[name.slice(MOMENTUM_PREFIX.length)] = t.data as Float32Array;
  }
  return out;
}

/**
 * Momentum buffers for an optimiser whose parameters are `names` (in its order), from the host copies
 * of a loaded checkpoint; throws naming a missing or mis-sized buffer.
 */
export function momentumFor(
  optimizer: SGD,
  names: readonly string[],
  momentum: Record<string, Float32Array>,
): Float32Array[] {
  return optimizer.params.map((p, k) => {
    const name = names[k];
    const m = momentum[name];
    if (!m) throw new Error(`checkpoint: no momentum buffer ${MOMENTUM_PREFIX}${name}`);
    if (m.length !== p.size) {
      throw new Error(`checkpoint: momentum ${name} has ${m.length} values for ${p.size}`);
    }
    return m;
  });
}
