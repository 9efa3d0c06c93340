/**
 * `deno task sweep <verb>`: the paper's grids (Section 5, random labels) as sweeps of cells, run on a
 * Slurm cluster as job arrays or on this machine.
 *
 * ```sh
 * deno task sweep plan --grid section5|random-labels|FILE.json --out DIR [--scale paper|reduced|tiny] [--seeds 0,1]
 * deno task sweep submit DIR --backend slurm [--partition P] [--gpus-per-cell N] [--time HH:MM:SS]
 *                        [--account A] [--max-parallel N] [--warn-seconds S] [--sbatch-arg X]…
 * deno task sweep submit DIR --backend local [--max-parallel N]
 * deno task sweep run-cell DIR INDEX          # what each array task runs
 * deno task sweep status DIR [--json]
 * deno task sweep collect DIR [--json]
 * ```
 *
 * Exit codes (sweep/errors.ts): 0 done; 2 usage, plan or grid error; 75 a cell (or the local sweep)
 * stopped early with a checkpoint, to be resumed (the Slurm script requeues it); run-cell's failures
 * keep `deno task train`'s codes (3 diverged, 4 data, 5 run folder, 6 in use, 7 write, 8 device);
 * 1 anything else. Errors are one line naming the file or cell; `--debug` adds the stack.
 * @module
 */
import { firstLine, USAGE_EXIT, UsageError } from "./errors.ts";

/** The verbs: name → module loaded on use (so each verb loads only what it needs). */
export const VERBS: Record<
  string,
  { help: string; main: () => Promise<(args: string[]) => Promise<number>> }
> = {
  plan: {
    help: "plan --grid section5|random-labels|FILE.json --out DIR [--scale paper|reduced|tiny] [--seeds 0,1]",
    main: async () => (await import("./make_plan.ts")).planMain,
  },
  submit: {
    help: "submit DIR --backend slurm|local [--partition P] [--gpus-per-cell N] [--time HH:MM:SS] " +
      "[--account A] [--max-parallel N] [--warn-seconds S] [--sbatch-arg X]…",
    main: async () => (await import("./submit.ts")).submitMain,
  },
  "run-cell": {
    help: "run-cell DIR INDEX",
    main: async () => (await import("./run_cell.ts")).runCellMain,
  },
  status: {
    help: "status DIR [--json]",
    main: async () => (await import("./status.ts")).statusMain,
  },
  collect: {
    help: "collect DIR [--json]",
    main: async () => (await import("./collect.ts")).collectMain,
  },
};

function usage(): string {
  return "usage: deno task sweep <verb> …\n" + Object.values(VERBS).map((v) => `  ${v.help}`).join("\n");
}

/** Runs the CLI; returns the exit code. */
export async function main(argsIn: readonly string[]): Promise<number> {
  const debug = argsIn.includes("--debug");
  const [verb, ...args] = argsIn.filter((a) => a !== "--debug");
  if (verb === undefined || verb === "--help" || verb === "-h" || verb === "help") {
    console.log(usage());
    return verb === undefined ? USAGE_EXIT : 0;
  }
  const entry = VERBS[verb];
  if (!entry) {
    console.error(`error: unknown verb "${verb}"\n${usage()}`);
    return USAGE_EXIT;
  }
  if (args.includes("--help") || args.includes("-h")) {
    console.log(`usage: deno task sweep ${entry.help}`);
    return 0;
  }
  try {
    return await (await entry.main())(args);
  } catch (e) {
    const name = e instanceof Error ? e.name : "";
    const usageLike = e instanceof UsageError || name === "PlanError" || name === "GridError" ||
      (e instanceof TypeError && (e as { code?: string }).code?.startsWith("ERR_PARSE_ARGS"));
    console.error(`error: ${firstLine(e)}`);
    if (debug) console.error(e instanceof Error ? e.stack : e);
    return usageLike ? USAGE_EXIT : 1;
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
