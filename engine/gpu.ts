/**
 * The GPU behind a small contract: allocate, release, upload, dispatch, flush, read.
 *
 * Every op records its dispatch into one open command encoder (one compute pass while only
 * dispatches are recorded); nothing is submitted until `flush()`, which readbacks and `sync()` call.
 * A training step is therefore one submit and no readback.
 */
import {
  type AdapterReport,
  type DeviceOptions,
  type GpuDeviceHandle,
  GpuError,
  requestGpuDevice,
} from "./device.ts";
import { BufferPool, type PoolStats } from "./buffer_pool.ts";
import { type CompiledKernel, type KernelSpec, PipelineCache } from "./kernel.ts";
import { environmentVariable } from "./environment.ts";
import { KERNELS_ENV, type KernelStrategy, resolveKernelStrategy } from "./strategy.ts";
import { Tuner } from "./tune/tuner.ts";
import { resolveTuningMode, TUNING_ENV } from "./tune/mode.ts";
import { defaultStore } from "./tune/store.ts";

/** A buffer range bound to one binding of a kernel. */
export interface BufferRange {
  /** The GPU buffer. */
  buffer: GPUBuffer;
  /** Byte offset (a multiple of 256). */
  offset: number;
  /** Byte size of the range. */
  size: number;
}

/** Counters for tests and benchmarks. */
export interface GpuCounters {
  /** Dispatches recorded. */
  dispatches: number;
  /** Command buffers submitted. */
  submits: number;
  /** Host readbacks (each waits for the GPU). */
  readbacks: number;
  /** Distinct pipelines compiled. */
  pipelines: number;
  /** Bind groups created (cached ones are not counted again). */
  bindGroupsCreated: number;
}

/** Time spent in the dispatches of one kernel name while profiling (see `Gpu.profile`). */
export interface KernelProfile {
  /** Kernel name as given to `dispatch`. */
  name: string;
  /** Dispatches timed. */
  count: number;
  /** Total GPU milliseconds. */
  ms: number;
}

/** What `Gpu.profileReport()` returns. */
export interface ProfileReport {
  /** Per kernel name, slowest first. */
  kernels: KernelProfile[];
  /** Sum of all timed dispatches (ms). */
  dispatchMs: number;
  /** Timestamp-query timing (true) or submit-per-dispatch host timing (false, coarse). */
  timestamps: boolean;
}

/** Timestamp queries per query set (two per dispatch). */
const PROFILE_QUERIES = 4096;

const MAX_BIND_GROUPS_CACHED = 20000;
const MAX_UNIFORMS_CACHED = 4096;

/** The engine's GPU context: device, buffer pool, pipeline and bind-group caches, command recording. */
export class Gpu {
  /** The WebGPU device. */
  readonly device: GPUDevice;
  /** What the adapter is (name, fallback or not, limits, features). */
  readonly report: AdapterReport;
  /** The storage-buffer pool. */
  readonly pool: BufferPool;
  /** The compiled-pipeline cache. */
  readonly pipelines: PipelineCache;
  /**
   * The kernel family ops generate (see `engine/strategy.ts`): chosen by `initDevice({ kernels })`, else
   * `SUPCON_KERNELS`, else by adapter. Assignable at any time; kernels are cached per source, so both
   * families can run on one device (the test suite does).
   */
  kernels: KernelStrategy;
  /**
   * The autotuner (see `engine/tune/tuner.ts`): its `mode` is chosen by `initDevice({ tuning })`, else
   * `SUPCON_TUNING`, else "cached".
   */
  readonly tuner: Tuner;
  /** When true every new tensor is filled with NaN (or 0x7fffffff) so unwritten elements show in tests. */
  poison = false;
  /** When true each dispatch is submitted on its own inside an error scope, so errors name the op. */
  debug = false;
  /**
   * Opt-in per-dispatch profiling. With the adapter's `timestamp-query` feature every dispatch gets
   * its own compute pass with begin/end timestamps (still one submit per flush, plus a resolve); without
   * it every dispatch is submitted alone and timed on the host from `onSubmittedWorkDone` (coarse).
   * Collect with `await profileReport()`. Off by default: the normal path is unchanged.
   */
  profile = false;
  /**
   * Accounting mode (like a "meta" device): when true, `dispatch` does everything but the final
   * `dispatchWorkgroups` call. Pipelines, bind groups, compute passes, copies, clears, uploads and
   * submits happen as usual, so the buffer pool sees exactly the acquire/release/submit sequence of a
   * real run, but no kernel runs and tensor contents are meaningless. For memory measurements
   * (`bench/memory_step.ts` by default); never for results.
   */
  dryRun = false;
  /** Counts of dispatches, submits, readbacks, pipelines and bind groups since creation. */
  readonly counters: GpuCounters = {
    dispatches: 0,
    submits: 0,
    readbacks: 0,
    pipelines: 0,
    bindGroupsCreated: 0,
  };

  #handle: GpuDeviceHandle;
  #encoder: GPUCommandEncoder | null = null;
  #pass: GPUComputePassEncoder | null = null;
  #opsSinceFlush: string[] = [];
  #stagingInFlight: GPUBuffer[] = [];
  #submitChecks: Promise<string | null>[] = [];
  #bufferIds = new WeakMap<GPUBuffer, number>();
  #nextBufferId = 1;
  #bindGroups = new Map<string, GPUBindGroup>();
  #uniforms = new Map<string, GPUBuffer>();
  #profQuery: GPUQuerySet | null = null;
  #profResolve: GPUBuffer | null = null;
  #profNames: string[] = [];
  #profPending: { names: string[]; staging: GPUBuffer }[] = [];
  #profHost: Promise<[string, number]>[] = [];
  #profHostLast = 0;

  /** Internal: use `initDevice()`. */
  constructor(
    handle: GpuDeviceHandle,
    kernels: KernelStrategy = handle.report.isFallback ? "software" : "gpu",
  ) {
    this.#handle = handle;
    this.device = handle.device;
    this.report = handle.report;
    this.kernels = kernels;
    this.pool = new BufferPool(this.device);
    this.tuner = new Tuner(this);
    this.pool.onDestroy = () => this.#bindGroups.clear();
    this.pipelines = new PipelineCache(this.device);
  }

  /** Throws if the device was lost. */
  checkAlive(): void {
    if (this.#handle.lostReason) throw new GpuError(this.#handle.lostReason);
  }

  #id(buffer: GPUBuffer): number {
    let id = this.#bufferIds.get(buffer);
    if (id === undefined) this.#bufferIds.set(buffer, id = this.#nextBufferId++);
    return id;
  }

  #encoderOpen(): GPUCommandEncoder {
    this.checkAlive();
    if (!this.#encoder) this.#encoder = this.device.createCommandEncoder();
    return this.#encoder;
  }

  #endPass(): void {
    if (this.#pass) {
      this.#pass.end();
      this.#pass = null;
    }
  }

  /** An immutable uniform buffer holding `data`, shared by every dispatch with the same contents. */
  uniform(data: ArrayBufferView): GPUBuffer {
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    const key = Array.from(bytes).join(",");
    let buffer = this.#uniforms.get(key);
    if (!buffer) {
      if (this.#uniforms.size >= MAX_UNIFORMS_CACHED) {
        // Uniform buffers may still be referenced by pending work: submit before dropping them.
        this.flush();
        for (const b of this.#uniforms.values()) b.destroy();
        this.#uniforms.clear();
        this.#bindGroups.clear();
      }
      const size = Math.max(16, Math.ceil(bytes.byteLength / 16) * 16);
      buffer = this.device.createBuffer({
        size,
        usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
        mappedAtCreation: true,
      });
      new Uint8Array(buffer.getMappedRange()).set(bytes);
      buffer.unmap();
      this.#uniforms.set(key, buffer);
    }
    return buffer;
  }

  /**
   * Records one dispatch of `spec` with `bindings` at group 0 bindings 0..n-1 (storage buffers, or a
   * uniform buffer for a GPUBuffer with UNIFORM usage, bound whole).
   */
  dispatch(
    spec: KernelSpec,
    bindings: (BufferRange | GPUBuffer)[],
    workgroups: [number, number?, number?],
  ): void {
    const kernel = this.pipelines.get(spec);
    this.counters.pipelines = this.pipelines.size;
    const bindGroup = this.#bindGroup(kernel, bindings);
    const [x, y = 1, z = 1] = workgroups;
    const max = this.report.limits.maxComputeWorkgroupsPerDimension ?? 65535;
    if (x > max || y > max || z > max || x < 1 || y < 1 || z < 1) {
      throw new GpuError(`${spec.name}: workgroup count [${x}, ${y}, ${z}] outside 1..${max}`);
    }
    if (this.debug) this.device.pushErrorScope("validation");
    const timed = this.profile && this.#timestamps();
    if (timed && this.#profNames.length * 2 >= PROFILE_QUERIES) this.flush();
    const encoder = this.#encoderOpen();
    if (timed) {
      this.#endPass();
      const k = this.#profNames.length;
      this.#profNames.push(spec.name);
      this.#pass = encoder.beginComputePass({
        timestampWrites: {
          querySet: this.#profQuery!,
          beginningOfPassWriteIndex: 2 * k,
          endOfPassWriteIndex: 2 * k + 1,
        },
      });
    }
    if (!this.#pass) this.#pass = encoder.beginComputePass();
    this.#pass.setPipeline(kernel.pipeline);
    this.#pass.setBindGroup(0, bindGroup);
    if (!this.dryRun) this.#pass.dispatchWorkgroups(x, y, z);
    if (timed) this.#endPass();
    this.counters.dispatches++;
    this.#opsSinceFlush.push(spec.name);
    if (this.profile && !timed) this.#profileHost(spec.name);
    if (this.debug) {
      this.flush();
      const name = spec.name;
      this.#submitChecks.push(this.device.popErrorScope().then((e) => e ? `${name}: ${e.message}` : null));
    }
  }

  #timestamps(): boolean {
    if (!this.device.features.has("timestamp-query")) return false;
    if (!this.#profQuery) {
      this.#profQuery = this.device.createQuerySet({ type: "timestamp", count: PROFILE_QUERIES });
      this.#profResolve = this.device.createBuffer({
        size: PROFILE_QUERIES * 8,
        usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
      });
    }
    return true;
  }

  /** Host-timed profiling: submit this dispatch alone; its time runs from the previous completion. */
  #profileHost(name: string): void {
    this.flush();
    const submitted = performance.now();
    this.#profHost.push(
      this.device.queue.onSubmittedWorkDone().then(() => {
        const done = performance.now();
        const ms = done - Math.max(submitted, this.#profHostLast);
        this.#profHostLast = done;
        return [name, ms] as [string, number];
      }),
    );
  }

  /** Resolves the timestamps of the encoder about to be submitted into a staging buffer. */
  #profileResolve(encoder: GPUCommandEncoder): void {
    const names = this.#profNames;
    if (!names.length) return;
    this.#profNames = [];
    const bytes = names.length * 16;
    const staging = this.device.createBuffer({
      size: bytes,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    encoder.resolveQuerySet(this.#profQuery!, 0, names.length * 2, this.#profResolve!, 0);
    encoder.copyBufferToBuffer(this.#profResolve!, 0, staging, 0, bytes);
    this.#profPending.push({ names, staging });
  }

  /**
   * Waits for the profiled work and returns GPU time per kernel name since the last report (or since
   * `profile` was switched on). Submits pending work.
   */
  async profileReport(): Promise<ProfileReport> {
    await this.sync();
    const totals = new Map<string, KernelProfile>();
    const add = (name: string, ms: number) => {
      const e = totals.get(name) ?? { name, count: 0, ms: 0 };
      e.count++;
      e.ms += ms;
      totals.set(name, e);
    };
    const pending = this.#profPending;
    this.#profPending = [];
    for (const { names, staging } of pending) {
      await staging.mapAsync(GPUMapMode.READ);
      const t = new BigUint64Array(staging.getMappedRange().slice(0));
      staging.unmap();
      staging.destroy();
      names.forEach((name, k) => add(name, Number(t[2 * k + 1] - t[2 * k]) / 1e6));
    }
    const host = this.#profHost;
    this.#profHost = [];
    for (const [name, ms] of await Promise.all(host)) add(name, ms);
    const kernels = [...totals.values()].sort((a, b) => b.ms - a.ms);
    return {
      kernels,
      dispatchMs: kernels.reduce((s, k) => s + k.ms, 0),
      timestamps: pending.length > 0 || host.length === 0,
    };
  }

  #bindGroup(kernel: CompiledKernel, bindings: (BufferRange | GPUBuffer)[]): GPUBindGroup {
    let key = String(kernel.id);
    for (const b of bindings) {
      key += b instanceof GPUBuffer ? `|u${this.#id(b)}` : `|${this.#id(b.buffer)}:${b.offset}:${b.size}`;
    }
    let group = this.#bindGroups.get(key);
    if (!group) {
      if (this.#bindGroups.size >= MAX_BIND_GROUPS_CACHED) this.#bindGroups.clear();
      // In an error scope (new bind groups are rare: they are cached), so that a bad binding, or the layout
      // of a pipeline that failed to compile, is reported with the kernel's name at the next synchronisation.
      this.device.pushErrorScope("validation");
      group = this.device.createBindGroup({
        layout: kernel.layout,
        entries: bindings.map((b, binding) => ({
          binding,
          resource: b instanceof GPUBuffer
            ? { buffer: b }
            : { buffer: b.buffer, offset: b.offset, size: b.size },
        })),
      });
      const name = kernel.name;
      this.#submitChecks.push(
        this.device.popErrorScope().then((e) => e && `kernel '${name}': binding failed: ${e.message}`),
      );
      this.counters.bindGroupsCreated++;
      this.#bindGroups.set(key, group);
    }
    return group;
  }

  /** Records a buffer-to-buffer copy. */
  copy(src: BufferRange, dst: BufferRange): void {
    if (src.size !== dst.size) {
      throw new GpuError(`copy: source ${src.size} bytes, destination ${dst.size} bytes`);
    }
    const encoder = this.#encoderOpen();
    this.#endPass();
    encoder.copyBufferToBuffer(src.buffer, src.offset, dst.buffer, dst.offset, src.size);
    this.#opsSinceFlush.push("copy");
  }

  /** Records zero-filling of a range (size a multiple of 4). */
  clear(range: BufferRange): void {
    const encoder = this.#encoderOpen();
    this.#endPass();
    encoder.clearBuffer(range.buffer, range.offset, range.size);
    this.#opsSinceFlush.push("clear");
  }

  /**
   * Writes host data into a range, ordered with the recorded work and without submitting it: the
   * bytes go to a small mapped staging buffer and a copy is recorded into the pending encoder, so
   * dispatches recorded before the write read the old contents and those after it the new ones.
   * Training steps use this for batch indices and the learning rate (no extra submit per step).
   */
  write(range: BufferRange, data: ArrayBufferView): void {
    this.checkAlive();
    if (data.byteLength !== range.size) {
      throw new GpuError(`write: ${data.byteLength} bytes of data for a ${range.size}-byte tensor`);
    }
    if (!this.#encoder) {
      // Nothing recorded: a queue write is ordered before the next encoder anyway, and needs no staging.
      this.writeNow(range, data);
      return;
    }
    const size = Math.ceil(data.byteLength / 4) * 4;
    const staging = this.device.createBuffer({
      size,
      usage: GPUBufferUsage.COPY_SRC,
      mappedAtCreation: true,
    });
    new Uint8Array(staging.getMappedRange()).set(
      new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    );
    staging.unmap();
    const encoder = this.#encoderOpen();
    this.#endPass();
    encoder.copyBufferToBuffer(staging, 0, range.buffer, range.offset, size);
    this.#opsSinceFlush.push("write");
    this.#stagingInFlight.push(staging);
  }

  /**
   * Writes host data with `queue.writeBuffer`, which runs before any recorded-but-unsubmitted work:
   * only for buffers no pending dispatch uses (fresh uploads take such buffers from the pool).
   */
  writeNow(range: BufferRange, data: ArrayBufferView): void {
    this.checkAlive();
    this.device.queue.writeBuffer(
      range.buffer,
      range.offset,
      data.buffer as ArrayBuffer,
      data.byteOffset,
      data.byteLength,
    );
  }

  /** True when commands are recorded but not submitted. */
  get pending(): boolean {
    return this.#encoder !== null;
  }

  /** Submits the recorded commands (no wait). */
  flush(): void {
    if (!this.#encoder) return;
    this.#endPass();
    if (this.#profNames.length) this.#profileResolve(this.#encoder);
    const ops = this.#opsSinceFlush;
    this.#opsSinceFlush = [];
    this.device.pushErrorScope("validation");
    this.device.pushErrorScope("out-of-memory");
    this.device.queue.submit([this.#encoder.finish()]);
    // Staging buffers of ordered writes: destroying after submit is safe (freed once the work is done).
    for (const b of this.#stagingInFlight.splice(0)) b.destroy();
    const oom = this.device.popErrorScope();
    const validation = this.device.popErrorScope();
    this.#submitChecks.push(
      Promise.all([oom, validation]).then(([a, b]) => {
        const error = a ?? b;
        if (!error) return null;
        const names = [...new Set(ops)].slice(0, 20).join(", ");
        return `${error.message} (in a submit recording: ${names})`;
      }),
    );
    this.#encoder = null;
    this.counters.submits++;
    this.pool.onSubmit();
  }

  /** Throws the first error raised by pipeline creation, a submit, or the device since the last check. */
  async checkErrors(): Promise<void> {
    const checks = [...this.pipelines.pendingChecks, ...this.#submitChecks];
    this.pipelines.pendingChecks = [];
    this.#submitChecks = [];
    const messages = (await Promise.all(checks)).filter((m): m is string => m !== null);
    const uncaptured = this.#handle.uncaptured;
    if (uncaptured.length) messages.push(...uncaptured.splice(0));
    this.checkAlive();
    if (messages.length) throw new GpuError(messages.join("\n"));
  }

  /** Submits pending work and waits until the GPU finished it; throws errors it raised. */
  async sync(): Promise<void> {
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
    await this.checkErrors();
  }

  /** Copies a range to a staging buffer, submits, and returns its bytes. */
  async read(range: BufferRange): Promise<ArrayBuffer> {
    const size = Math.ceil(range.size / 4) * 4;
    const staging = this.device.createBuffer({
      size,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    const encoder = this.#encoderOpen();
    this.#endPass();
    encoder.copyBufferToBuffer(range.buffer, range.offset, staging, 0, size);
    this.flush();
    this.counters.readbacks++;
    try {
      await staging.mapAsync(GPUMapMode.READ);
      const bytes = staging.getMappedRange().slice(0);
      staging.unmap();
      await this.checkErrors();
      return bytes;
    } finally {
      staging.destroy();
    }
  }

  /** Allocates a pooled storage buffer range of `bytes` bytes. */
  allocate(bytes: number, forUpload: boolean): BufferRange {
    this.checkAlive();
    const buffer = this.pool.acquire(Math.max(4, bytes), forUpload);
    return { buffer, offset: 0, size: Math.max(4, Math.ceil(bytes / 4) * 4) };
  }

  /** Pool statistics. */
  memory(): PoolStats {
    return this.pool.stats();
  }

  /** Destroys the device; the context is unusable afterwards. */
  destroy(): void {
    this.device.destroy();
  }
}

let current: Gpu | null = null;
let pending: Promise<Gpu> | null = null;

/**
 * Initialises (once) and returns the engine's GPU context. Called again, it returns the same context; a
 * `kernels` option given then re-selects the kernel strategy, and a `tuning` option the tuning mode.
 */
export async function initDevice(options: DeviceOptions = {}): Promise<Gpu> {
  const strategy = (report: AdapterReport) =>
    options.kernels !== undefined
      ? resolveKernelStrategy(options.kernels, report)
      : resolveKernelStrategy(environmentVariable(KERNELS_ENV), report, KERNELS_ENV);
  const tuning = () =>
    options.tuning !== undefined
      ? resolveTuningMode(options.tuning)
      : resolveTuningMode(environmentVariable(TUNING_ENV), TUNING_ENV);
  if (!current) {
    const mode = tuning(); // an unknown mode fails before a device is requested
    pending ??= requestGpuDevice(options)
      .then(async (h) => {
        const g = new Gpu(h, strategy(h.report));
        await g.tuner.open(mode, defaultStore());
        return current = g;
      })
      .finally(() => pending = null);
    return await pending;
  }
  if (options.kernels !== undefined) current.kernels = strategy(current.report);
  if (options.tuning !== undefined && options.tuning !== current.tuner.mode) {
    await current.tuner.open(tuning());
  }
  return current;
}

/** The initialised context; throws a clear error if `initDevice()` was not awaited first. */
export function gpu(): Gpu {
  if (!current) throw new GpuError("No GPU device: call `await initDevice()` before creating tensors.");
  return current;
}

/** True once `initDevice()` has completed. */
export function hasDevice(): boolean {
  return current !== null;
}
