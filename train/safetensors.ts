/**
 * Reader/writer for the safetensors format (https://github.com/huggingface/safetensors), compatible with
 * `safetensors.torch.load_file` / `safetensors.numpy.load_file`:
 *
 *   [u64 little-endian N][N bytes JSON header, space padded to 8-byte alignment][raw little-endian data]
 *
 * header: `{ "<name>": { "dtype": "F32", "shape": [..], "data_offsets": [begin, end] }, "__metadata__": {..} }`
 * with offsets relative to the start of the data section; tensors are contiguous, non-overlapping and cover
 * the whole data section.
 * @module
 */

import { writeFileAtomic } from "./atomic.ts";

/** Supported dtypes. F16/BF16 are carried as raw 16-bit words (Uint16Array). */
export type SafetensorsDtype =
  | "F64"
  | "F32"
  | "F16"
  | "BF16"
  | "I64"
  | "I32"
  | "I16"
  | "I8"
  | "U64"
  | "U32"
  | "U16"
  | "U8"
  | "BOOL";

/** Typed arrays accepted/returned. */
export type TensorData =
  | Float64Array
  | Float32Array
  | BigInt64Array
  | BigUint64Array
  | Int32Array
  | Uint32Array
  | Int16Array
  | Uint16Array
  | Int8Array
  | Uint8Array;

/** One tensor. `data.length` must equal the product of `shape` (1 for a scalar, `shape: []`). */
export interface Tensor {
  dtype: SafetensorsDtype;
  shape: number[];
  data: TensorData;
}

/** Result of {@link loadSafetensors}. */
export interface SafetensorsFile {
  tensors: Record<string, Tensor>;
  metadata: Record<string, string>;
}

interface DtypeInfo {
  bytes: number;
  ctor: { new (buf: ArrayBuffer): TensorData; name: string };
}

const DTYPES: Record<SafetensorsDtype, DtypeInfo> = {
  F64: { bytes: 8, ctor: Float64Array },
  F32: { bytes: 4, ctor: Float32Array },
  F16: { bytes: 2, ctor: Uint16Array },
  BF16: { bytes: 2, ctor: Uint16Array },
  I64: { bytes: 8, ctor: BigInt64Array },
  I32: { bytes: 4, ctor: Int32Array },
  I16: { bytes: 2, ctor: Int16Array },
  I8: { bytes: 1, ctor: Int8Array },
  U64: { bytes: 8, ctor: BigUint64Array },
  U32: { bytes: 4, ctor: Uint32Array },
  U16: { bytes: 2, ctor: Uint16Array },
  U8: { bytes: 1, ctor: Uint8Array },
  BOOL: { bytes: 1, ctor: Uint8Array },
};

/** Largest header accepted (same limit as the reference implementation). */
export const MAX_HEADER_BYTES = 100_000_000;

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function assertLittleEndian(): void {
  if (!LITTLE_ENDIAN) throw new Error("safetensors: big-endian hosts are not supported");
}

/** Error raised for malformed files; `file` and (where meaningful) absolute `byte` offset are included. */
export class SafetensorsError extends Error {
  constructor(readonly file: string, readonly byte: number | undefined, detail: string) {
    super(`safetensors: ${file}${byte === undefined ? "" : ` (byte ${byte})`}: ${detail}`);
    this.name = "SafetensorsError";
  }
}

function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Serialise tensors (sorted by name) and optional string metadata into safetensors bytes. */
export function encodeSafetensors(
  tensors: Record<string, Tensor>,
  metadata?: Record<string, string>,
): Uint8Array {
  assertLittleEndian();
  const names = Object.keys(tensors).sort();
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== "string") throw new TypeError(`safetensors: metadata "${k}" must be a string`);
    }
    header.__metadata__ = metadata;
  }
  let offset = 0;
  for (const name of names) {
    if (name === "__metadata__") {
      throw new TypeError(`safetensors: "__metadata__" is not a valid tensor name`);
    }
    const t = tensors[name];
    const info = DTYPES[t.dtype];
    if (!info) throw new TypeError(`safetensors: tensor "${name}": unsupported dtype ${t.dtype}`);
    if (!Array.isArray(t.shape) || t.shape.some((d) => !Number.isSafeInteger(d) || d < 0)) {
      throw new TypeError(`safetensors: tensor "${name}": invalid shape ${JSON.stringify(t.shape)}`);
    }
    if (!(t.data instanceof info.ctor)) {
      throw new TypeError(
        `safetensors: tensor "${name}": dtype ${t.dtype} needs ${info.ctor.name}, got ${t.data?.constructor?.name}`,
      );
    }
    if (t.data.length !== numel(t.shape)) {
      throw new TypeError(
        `safetensors: tensor "${name}": shape [${t.shape}] has ${
          numel(t.shape)
        } elements, data has ${t.data.length}`,
      );
    }
    const len = t.data.byteLength;
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + len] };
    offset += len;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + padded + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(padded), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + padded);
  let pos = 8 + padded;
  for (const name of names) {
    const d = tensors[name].data;
    out.set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength), pos);
    pos += d.byteLength;
  }
  return out;
}

/**
 * Parse and validate safetensors bytes. `file` is used in error messages only. Tensor data is copied into
 * fresh, aligned typed arrays.
 */
export function decodeSafetensors(bytes: Uint8Array, file = "<buffer>"): SafetensorsFile {
  assertLittleEndian();
  const fail = (byte: number | undefined, detail: string): never => {
    throw new SafetensorsError(file, byte, detail);
  };
  if (bytes.length < 8) fail(0, `file is ${bytes.length} bytes, too short for the 8-byte header length`);
  const n64 = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (n64 > BigInt(MAX_HEADER_BYTES)) fail(0, `header length ${n64} exceeds limit ${MAX_HEADER_BYTES}`);
  const n = Number(n64);
  if (n < 2) fail(0, `header length ${n} is too small`);
  if (8 + n > bytes.length) {
    fail(
      0,
      `header length ${n} runs past end of file (file is ${bytes.length} bytes, header would end at ${
        8 + n
      })`,
    );
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, 8 + n));
  } catch {
    return fail(8, `header is not valid UTF-8`);
  }
  if (!text.startsWith("{")) fail(8, `header does not start with '{'`);
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    return fail(8, `header is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) {
    fail(8, `header is not an object`);
  }
  const dataStart = 8 + n;
  const dataLen = bytes.length - dataStart;
  const metadata: Record<string, string> = {};
  const entries: { name: string; dtype: SafetensorsDtype; shape: number[]; begin: number; end: number }[] =
    [];
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === "__metadata__") {
      if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
        fail(8, `__metadata__ is not an object`);
      }
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== "string") fail(8, `__metadata__["${k}"] is not a string`);
        metadata[k] = v as string;
      }
      continue;
    }
    const e = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof e !== "object" || e === null) fail(8, `tensor "${name}": entry is not an object`);
    const dtype = e.dtype as SafetensorsDtype;
    if (typeof dtype !== "string" || !(dtype in DTYPES)) {
      fail(8, `tensor "${name}": unsupported dtype ${JSON.stringify(e.dtype)}`);
    }
    const shape = e.shape;
    if (!Array.isArray(shape) || shape.some((d) => !Number.isSafeInteger(d) || d < 0)) {
      fail(8, `tensor "${name}": invalid shape ${JSON.stringify(shape)}`);
    }
    const offs = e.data_offsets;
    if (
      !Array.isArray(offs) || offs.length !== 2 || !offs.every((o) => Number.isSafeInteger(o) && o >= 0) ||
      offs[0] > offs[1]
    ) {
      fail(8, `tensor "${name}": invalid data_offsets ${JSON.stringify(offs)}`);
    }
    const [begin, end] = offs as [number, number];
    if (end > dataLen) {
      fail(
        dataStart + begin,
        `tensor "${name}": data_offsets [${begin}, ${end}] out of range: data section is ${dataLen} bytes ` +
          `(absolute end ${dataStart + end} > file size ${bytes.length}; file truncated?)`,
      );
    }
    const want = numel(shape as number[]) * DTYPES[dtype].bytes;
    if (end - begin !== want) {
      fail(
        dataStart + begin,
        `tensor "${name}": ${dtype}[${shape}] needs ${want} bytes but data_offsets [${begin}, ${end}] span ${
          end - begin
        }`,
      );
    }
    entries.push({ name, dtype, shape: shape as number[], begin, end });
  }
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let expected = 0;
  for (const e of entries) {
    if (e.begin !== expected) {
      fail(
        dataStart + Math.min(e.begin, expected),
        e.begin > expected
          ? `gap in data section before tensor "${e.name}" (expected offset ${expected}, got ${e.begin})`
          : `tensor "${e.name}" overlaps the previous tensor (offset ${e.begin} < ${expected})`,
      );
    }
    expected = e.end;
  }
  if (expected !== dataLen) {
    fail(
      dataStart + expected,
      `data section is ${dataLen} bytes but tensors cover ${expected} (${dataLen - expected} trailing bytes)`,
    );
  }
  const tensors: Record<string, Tensor> = {};
  for (const e of entries) {
    const copy = bytes.slice(dataStart + e.begin, dataStart + e.end);
    tensors[e.name] = { dtype: e.dtype, shape: e.shape, data: new DTYPES[e.dtype].ctor(copy.buffer) };
  }
  return { tensors, metadata };
}

/** Write a safetensors file atomically. */
export async function saveSafetensors(
  path: string,
  tensors: Record<string, Tensor>,
  metadata?: Record<string, string>,
): Promise<void> {
  await writeFileAtomic(path, encodeSafetensors(tensors, metadata));
}

/** Read and validate a safetensors file; errors are {@link SafetensorsError}s naming the file and byte. */
export async function loadSafetensors(path: string): Promise<SafetensorsFile> {
  return decodeSafetensors(await Deno.readFile(path), path);
}
