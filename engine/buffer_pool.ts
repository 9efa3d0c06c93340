/**
 * GPU buffers bucketed by size class.
 *
 * Two free lists, because WebGPU orders work in two ways:
 * - dispatches recorded into one command encoder run in order, so a buffer released by an earlier
 *   dispatch of the encoder being recorded may be written by a later dispatch (`reusableNow`);
 * - `queue.writeBuffer` runs before the whole pending encoder, so a buffer that receives an upload must
 *   not be read by any dispatch that is recorded but not yet submitted: uploads only take buffers whose
 *   last use was already submitted (`reusableAfterSubmit`).
 *
 * A request takes the oldest free buffer of its size class (oldest first keeps the bind-group cache
 * hitting: a repeated step gets the same buffers in the same order). Above 64 KiB, when its class has no
 * free buffer, it takes the smallest free buffer at most `REUSE_SLACK` times its class instead of
 * creating one: a buffer released by one layer then serves a slightly smaller tensor of another (e.g. a
 * 9 MiB weight gradient an 8 MiB activation), which lowers what the pool holds at a step's peak.
 *
 * Within one command encoder nothing can be destroyed (a pending dispatch may still use it), so what the
 * pool holds at the peak of a single-submit training step is the sum of the buffers it created for it.
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

/**
 * How much larger than its size class a reused free buffer may be, for requests above 64 KiB whose own
 * class has no free buffer (the live bytes count the whole buffer, so this bounds that waste).
 */
export const REUSE_SLACK = 9 / 8;

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
    let buffer = this.#take(size, forUpload);
    if (!buffer && size > 65536) {
      const fit = this.#bestFit(size, forUpload);
      if (fit) buffer = this.#take(fit, forUpload);
    }
    if (buffer) {
      this.#pooledBytes -= buffer.size;
    } else {
      buffer = this.#device.createBuffer({ size, usage: STORAGE_USAGE });
      this.#order.set(buffer, this.#created++);
    }
    this.#live.add(buffer);
    this.#liveBytes += buffer.size;
    this.#peakLive = Math.max(this.#peakLive, this.#liveBytes);
    this.#peakTotal = Math.max(this.#peakTotal, this.#liveBytes + this.#pooledBytes);
    return buffer;
  }

  /** The oldest free buffer of class `size` that the request may take, removed from its free list. */
  #take(size: number, forUpload: boolean): GPUBuffer | undefined {
    const buffer = this.#takeOldest(this.#reusableAfterSubmit.get(size));
    if (buffer || forUpload) return buffer;
    return this.#takeOldest(this.#reusableNow.get(size));
  }

  /** The smallest class above `size`, within `REUSE_SLACK`, that has a free buffer the request may take. */
  #bestFit(size: number, forUpload: boolean): number {
    let best = 0;
    const consider = (map: Map<number, GPUBuffer[]>) => {
      for (const [s, list] of map) {
        if (list.length && s > size && s <= size * REUSE_SLACK && (!best || s < best)) best = s;
      }
    };
    consider(this.#reusableAfterSubmit);
    if (!forUpload) consider(this.#reusableNow);
    return best;
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
