/**
 * An exclusive lock on a run folder: `<dir>/.lock`, held with an OS file lock (`flock`, through
 * `Deno.FsFile.tryLockSync`) for the life of the run and holding the holder's PID, host, start time
 * and command. A second run into the same folder fails at once with a {@link RunLockedError} naming
 * the holder. The operating system drops the lock when its process dies, however it dies (SIGKILL
 * included), so a lock file nobody holds is stale and is taken over; PID reuse cannot fool it, and on
 * NFS the lock is seen by every host.
 *
 * Needs `--allow-read --allow-write` only (the host name needs `--allow-sys`; "unknown" without it).
 * @module
 */
import { join } from "node:path";
import { FileWriteError } from "./atomic.ts";
import { onForcedExit } from "./signals.ts";

/** The lock file's name inside a run folder. */
export const LOCK_FILE = ".lock";

/** What a lock file holds. */
export interface LockInfo {
  /** Process id of the holder. */
  pid: number;
  /** Host name of the holder. */
  host: string;
  /** ISO time the lock was taken. */
  started: string;
  /** What the holder runs (for the message). */
  command?: string;
}

/** The folder is locked by a live run. */
export class RunLockedError extends Error {
  /** The error for `dir`, held by `holder`. */
  constructor(readonly dir: string, readonly holder: LockInfo, readonly lockPath: string) {
    super(
      `${dir} is in use by another run (pid ${holder.pid} on ${holder.host}, since ${holder.started}${
        holder.command ? `: ${holder.command}` : ""
      }; lock ${lockPath})`,
    );
    this.name = "RunLockedError";
  }
}

function hostName(): string {
  try {
    if (Deno.permissions.querySync({ name: "sys", kind: "hostname" }).state === "granted") {
      return Deno.hostname();
    }
  } catch { /* no permission */ }
  return "unknown";
}

/** An exclusive lock on a run folder (see the module doc); `release()` or `using`. */
export class RunLock implements Disposable {
  #released = false;
  #unregister: () => void;
  #file: Deno.FsFile;

  private constructor(
    readonly path: string,
    file: Deno.FsFile,
    readonly info: LockInfo,
    readonly tookOver: LockInfo | null,
  ) {
    this.#file = file;
    this.#unregister = onForcedExit(() => this.release());
  }

  /**
   * Takes the lock on `dir` (which must exist), taking over a stale lock file; throws
   * {@link RunLockedError} when a live run holds it, {@link FileWriteError} when the folder is not
   * writable.
   */
  static acquire(dir: string, command?: string): RunLock {
    const path = join(dir, LOCK_FILE);
    const info: LockInfo = {
      pid: Deno.pid,
      host: hostName(),
      started: new Date().toISOString(),
      ...(command ? { command } : {}),
    };
    for (let attempt = 0; attempt < 5; attempt++) {
      let file: Deno.FsFile;
      try {
        file = Deno.openSync(path, { read: true, write: true, create: true });
      } catch (e) {
        throw new FileWriteError(path, e);
      }
      let locked = false;
      try {
        locked = file.tryLockSync(true);
      } catch (e) {
        file.close();
        throw new FileWriteError(path, e);
      }
      if (!locked) {
        const holder = RunLock.read(path) ?? { pid: 0, host: "?", started: "?" };
        file.close();
        throw new RunLockedError(dir, holder, path);
      }
      // The file may have been removed (its holder released it) between open and lock: retry.
      let same = false;
      try {
        same = Deno.statSync(path).ino === file.statSync().ino;
      } catch { /* removed */ }
      if (!same) {
        file.close();
        continue;
      }
      const previous = RunLock.read(path);
      try {
        file.truncateSync(0);
        file.writeSync(new TextEncoder().encode(JSON.stringify(info) + "\n"));
      } catch (e) {
        file.close();
        throw new FileWriteError(path, e);
      }
      return new RunLock(path, file, info, previous);
    }
    throw new Error(`${path}: could not take the lock (another run keeps taking it)`);
  }

  /** The lock file's contents, or null when it is unreadable or empty. */
  static read(path: string): LockInfo | null {
    try {
      const info = JSON.parse(Deno.readTextFileSync(path));
      return typeof info?.pid === "number" && typeof info?.host === "string" ? info as LockInfo : null;
    } catch {
      return null;
    }
  }

  /** Releases the lock (removes the file, then unlocks). Safe to call twice. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.#unregister();
    try {
      Deno.removeSync(this.path);
    } catch { /* gone */ }
    try {
      this.#file.close();
    } catch { /* closed */ }
  }

  /** `using lock = RunLock.acquire(dir)`. */
  [Symbol.dispose](): void {
    this.release();
  }
}
