/**
 * GPU buffers bucketed by size class.
 *
 * Two free lists, because WebGPU orders work in two ways:
 * - dispatches recorded into one command encoder run in order, so a buffer released by an earlier
 *   dispatch of the encoder being recorded may be written by a later dispatch (`reusableNow`);
 * - `queue.writeBuffer` runs before the whole pending encoder, so a buffer that receives an upload must
 *   not be read by any dispatch that is recorded but not yet submitted: uploads only take buffers whose
 *   last use was already submitted (`reusableAfterSubmit`).
 */

/** The usage every pooled storage buffer gets, so any tensor can be read, written, copied and cleared. */
export const STORAGE_USAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

/** What the pool holds and has handed out. */
export interface PoolStats {
  /** Buffers handed out and not released. */
  liveBuffers: number;
  /** Bytes of buffers handed out and not released. */
  liveBytes: number;
  /** Highest `liveBytes` since creation or the last `resetPeak()`. */
  peakLiveBytes: number;
  /** Buffers kept for reuse. */
  pooledBuffers: number;
  /** Bytes kept for reuse. */
  pooledBytes: number;
  /** Buffers ever created by the pool. */
  created: number;
  /** Bytes of all buffers the pool owns (live + pooled): what the GPU actually holds. */
  totalBytes: number;
  /** Highest `totalBytes` since creation or the last `resetPeak()`. */
  peakTotalBytes: number;
}

/** Rounds a byte count up to its size class: powers of two up to 64 KiB, sixteenth steps above. */
export function sizeClass(bytes: number): number {
  const minimum = 256;
  if (bytes <= minimum) return minimum;
  const p = 2 ** Math.ceil(Math.log2(bytes));
  if (p <= 65536) return p;
  const step = p / 16; // steps of p/16 between p/2 and p: waste at most 1/8 of the request
  return Math.ceil(bytes / step) * step;
}

/** A pool of storage buffers for one device. */
export class BufferPool {
  #device: GPUDevice;
  #reusableAfterSubmit = new Map<number, GPUBuffer[]>();
  #reusableNow = new Map<number, GPUBuffer[]>();
  #live = new Set<GPUBuffer>();
  #liveBytes = 0;
  #peakLive = 0;
  #pooledBytes = 0;
  #created = 0;
  #peakTotal = 0;
  #order = new WeakMap<GPUBuffer, number>();
  /** Called when the pool destroys buffers, so caches keyed by buffer identity can drop them. */
  onDestroy: (() => void) | null = null;

  /** A pool allocating from `device`. */
  constructor(device: GPUDevice) {
    this.#device = device;
  }

  /**
   * A buffer of at least `bytes` bytes. `forUpload` buffers will be written with `queue.writeBuffer`
   * before the pending encoder runs, so they only come from buffers whose last use was submitted.
   */
  acquire(bytes: number, forUpload: boolean): GPUBuffer {
    const size = sizeClass(bytes);
    let buffer = this.#takeOldest(this.#reusableAfterSubmit.get(size));
    if (!buffer && !forUpload) buffer = this.#takeOldest(this.#reusableNow.get(size));
    if (buffer) {
      this.#pooledBytes -= size;
    } else {
      buffer = this.#device.createBuffer({ size, usage: STORAGE_USAGE });
      this.#order.set(buffer, this.#created++);
    }
    this.#live.add(buffer);
    this.#liveBytes += size;
    this.#peakLive = Math.max(this.#peakLive, this.#liveBytes);
    this.#peakTotal = Math.max(this.#peakTotal, this.#liveBytes + this.#pooledBytes);
    return buffer;
  }

  #takeOldest(list: GPUBuffer[] | undefined): GPUBuffer | undefined {
    if (!list || list.length === 0) return undefined;
    let best = 0;
    for (let i = 1; i < list.length; i++) {
      if (this.#order.get(list[i])! < this.#order.get(list[best])!) best = i;
    }
    const [buffer] = list.splice(best, 1);
    return buffer;
  }

  /** Returns a buffer; it is reusable at once by later dispatches, and by uploads after the next submit. */
  release(buffer: GPUBuffer): void {
    if (!this.#live.delete(buffer)) throw new Error("BufferPool.release: buffer is not live (double free?)");
    this.#liveBytes -= buffer.size;
    this.#pooledBytes += buffer.size;
    push(this.#reusableNow, buffer);
  }

  /** The pending encoder was submitted: everything released so far may now receive uploads. */
  onSubmit(): void {
    for (const [size, list] of this.#reusableNow) {
      for (const b of list) push(this.#reusableAfterSubmit, b, size);
    }
    this.#reusableNow.clear();
  }

  /** Destroys all pooled (not live) buffers. Only call after a submit. */
  trim(): void {
    this.onSubmit();
    for (const list of this.#reusableAfterSubmit.values()) for (const b of list) b.destroy();
    this.#reusableAfterSubmit.clear();
    this.#pooledBytes = 0;
    this.onDestroy?.();
  }

  /** Counts of live and pooled buffers and bytes. */
  stats(): PoolStats {
    let pooledBuffers = 0;
    for (const l of this.#reusableAfterSubmit.values()) pooledBuffers += l.length;
    for (const l of this.#reusableNow.values()) pooledBuffers += l.length;
    return {
      liveBuffers: this.#live.size,
      liveBytes: this.#liveBytes,
      peakLiveBytes: this.#peakLive,
      pooledBuffers,
      pooledBytes: this.#pooledBytes,
      created: this.#created,
      totalBytes: this.#liveBytes + this.#pooledBytes,
      peakTotalBytes: this.#peakTotal,
    };
  }

  /** Restarts peak tracking from the current usage. */
  resetPeak(): void {
    this.#peakLive = this.#liveBytes;
    this.#peakTotal = this.#liveBytes + this.#pooledBytes;
  }
}

function push(map: Map<number, GPUBuffer[]>, buffer: GPUBuffer, size = buffer.size): void {
  let list = map.get(size);
  if (!list) map.set(size, list = []);
  list.push(buffer);
}
