/**
 * The local backend: runs cells on this machine as `run-cell` child processes, at most `maxParallel`
 * at a time, each logging to DIR/logs/local_<index>.out. A cell that stops early with a checkpoint
 * (exit 75: a signal sent to that cell alone) is started again and resumes, as Slurm would requeue it.
 * SIGINT/SIGTERM to this process stops the sweep: the signal goes on to every running cell (each
 * writes a checkpoint), no further cell starts, and the next submit resumes.
 * @module
 */
import { join } from "node:path";
import { REQUEUE_EXIT } from "./errors.ts";
import { absolute, runCellArgs } from "./runtime.ts";
import { SWEEP_FILES } from "./plan.ts";

/** Options of {@link runLocal}. */
export interface LocalOptions {
  /** At most this many cells at once (default 1). */
  maxParallel?: number;
  /** Times one cell may be started again after an early stop within this run (default 3). */
  maxRequeues?: number;
  /** A line of progress ("cell 3 started", …). */
  log?: (line: string) => void;
  /** After each cell's process ends. */
  onExit?: (index: number, code: number) => void | Promise<void>;
}

/** The result of {@link runLocal}: each cell's last exit code, and the signal that stopped the sweep. */
export interface LocalResult {
  /** Exit code of each cell's last attempt. */
  codes: Map<number, number>;
  /** SIGINT or SIGTERM when the sweep was stopped, else null. */
  stoppedBy: string | null;
}

function realPath(path: string): string | null {
  try {
    return Deno.realPathSync(path);
  } catch {
    return null;
  }
}

/**
 * What starts a cell: this Deno by its path when that may run, else by the name `deno` (what
 * `deno task sweep`'s `--allow-run=deno` allows) when PATH's `deno` is this Deno.
 */
export function cellExecutable(): string {
  const exe = Deno.execPath();
  if (Deno.permissions.querySync({ name: "run", command: exe }).state === "granted") return exe;
  let path = "";
  try {
    path = Deno.env.get("PATH") ?? "";
  } catch { /* no permission: not found */ }
  const found = path.split(":").filter(Boolean).map((d) => join(d, "deno")).find((p) => realPath(p) !== null);
  const allowed = Deno.permissions.querySync({ name: "run", command: "deno" }).state === "granted";
  if (found && allowed && realPath(found) === realPath(exe)) return "deno";
  throw new Error(
    `the local backend starts this Deno (${exe}) for each cell and may not: deno task sweep allows "deno" ` +
      `from PATH${
        found ? `, which is another Deno (${found})` : ", where there is none"
      }; put this Deno first ` +
      `on PATH, or run sweep/main.ts with --allow-run=${exe}`,
  );
}

/** Runs the cells `indices` of the plan in `planDir` here (see the module doc). */
export async function runLocal(
  planDir: string,
  indices: readonly number[],
  o: LocalOptions = {},
): Promise<LocalResult> {
  const dir = absolute(planDir);
  const exe = cellExecutable();
  const logs = join(dir, SWEEP_FILES.logs);
  await Deno.mkdir(logs, { recursive: true });
  const log = o.log ?? ((l: string) => console.log(l));
  const maxParallel = Math.max(1, o.maxParallel ?? 1);
  const queue = [...indices];
  const requeues = new Map<number, number>();
  const running = new Map<number, Deno.ChildProcess>();
  const codes = new Map<number, number>();
  let stoppedBy: string | null = null;
  const listeners = (["SIGINT", "SIGTERM"] as const).map((sig) => {
    const fn = () => {
      if (stoppedBy === null) log(`${sig}: stopping the sweep; running cells write a checkpoint`);
      stoppedBy ??= sig;
      for (const child of running.values()) {
        try {
          child.kill("SIGTERM");
        } catch { /* gone */ }
      }
    };
    Deno.addSignalListener(sig, fn);
    return [sig, fn] as const;
  });
  const start = async (index: number): Promise<{ index: number; code: number }> => {
    const file = await Deno.open(join(logs, `local_${index}.out`), { append: true, create: true });
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command(exe, {
        args: runCellArgs(dir, index),
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
    } catch (e) {
      file.close();
      throw e;
    }
    running.set(index, child);
    log(`cell ${index}: started (pid ${child.pid}, log ${join(logs, `local_${index}.out`)})`);
    // Both streams into the one log file, in arrival order.
    const copy = async (stream: ReadableStream<Uint8Array>) => {
      for await (const chunk of stream) await file.write(chunk);
    };
    await Promise.all([copy(child.stdout), copy(child.stderr)]);
    const { code } = await child.status;
    file.close();
    running.delete(index);
    return { index, code };
  };
  try {
    const active = new Map<number, Promise<{ index: number; code: number }>>();
    while (queue.length || active.size) {
      while (stoppedBy === null && queue.length && active.size < maxParallel) {
        const index = queue.shift()!;
        active.set(index, start(index));
      }
      if (active.size === 0) break;
      const { index, code } = await Promise.race(active.values());
      active.delete(index);
      codes.set(index, code);
      await o.onExit?.(index, code);
      if (code === 0) {
        log(`cell ${index}: done`);
      } else if (
        code === REQUEUE_EXIT && stoppedBy === null && (requeues.get(index) ?? 0) < (o.maxRequeues ?? 3)
      ) {
        requeues.set(index, (requeues.get(index) ?? 0) + 1);
        log(`cell ${index}: stopped early with a checkpoint; starting it again to resume`);
        queue.push(index);
      } else if (code === REQUEUE_EXIT) {
        log(`cell ${index}: stopped with a checkpoint; submit again to resume it`);
      } else {
        log(`cell ${index}: failed (exit ${code}; see its failed.json and log)`);
      }
    }
  } finally {
    for (const [sig, fn] of listeners) Deno.removeSignalListener(sig, fn);
  }
  return { codes, stoppedBy };
}
