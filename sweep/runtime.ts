/**
 * How a sweep starts `run-cell` in another process (the local backend's children, the Slurm batch
 * script): this Deno, this checkout's sweep/main.ts and deno.json, and run-cell's permissions.
 * @module
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The checkout's root folder (where deno.json is). */
export const PROJECT_ROOT: string = join(dirname(fileURLToPath(import.meta.url)), "..");

/** sweep/main.ts of this checkout. */
export const MAIN_PATH: string = join(PROJECT_ROOT, "sweep", "main.ts");

/**
 * run-cell's permissions: files, the environment variables the engine, trainer and Slurm use, the
 * host name (the run lock names it); nothing to run, no network.
 */
export const RUN_CELL_FLAGS: readonly string[] = [
  "--allow-read",
  "--allow-write",
  "--allow-env=SUPCON_*,SLURM_*,HOME,XDG_CACHE_HOME,PLOT_FONT",
  "--allow-sys=hostname",
];

/** The argv (after the Deno binary) that runs cell `index` of the plan in `planDir`. */
export function runCellArgs(planDir: string, index: number | string): string[] {
  return [
    "run",
    "--quiet",
    `--config=${join(PROJECT_ROOT, "deno.json")}`,
    ...RUN_CELL_FLAGS,
    MAIN_PATH,
    "run-cell",
    planDir,
    String(index),
  ];
}

/** Absolute path of `path` (resolving symlinks when it exists). */
export function absolute(path: string): string {
  try {
    return Deno.realPathSync(path);
  } catch {
    return path.startsWith("/") ? path : join(Deno.cwd(), path);
  }
}

/** Runs `cmd args` and returns its exit code, stdout and stderr (code 127 when it cannot start). */
export async function capture(
  cmd: string,
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
    const dec = new TextDecoder();
    return { code: r.code, stdout: dec.decode(r.stdout), stderr: dec.decode(r.stderr) };
  } catch (e) {
    return { code: 127, stdout: "", stderr: (e as Error).message.split("\n")[0] };
  }
}
