/**
 * `deno task train`: Section 5 of the paper — ResNet-18 trained with CE, CE-fix or SC on CIFAR-10/100,
 * Fashion-MNIST or a built-in synthetic dataset, with checkpoints, exact resume, NaN detection, metrics
 * and the final evaluation (SC through a linear probe on the frozen encoder).
 *
 * ```sh
 * deno task train --dataset cifar10 --loss sc --width 0.25 --iterations 2000 --batch 128 --out runs/sc
 * deno task train --out runs/sc --resume --dataset cifar10 --loss sc --width 0.25 --iterations 2000 --batch 128
 * ```
 *
 * Exit codes: 0 done; 2 usage or configuration error; 3 diverged (non-finite loss); 4 the data cannot be
 * read; 5 a damaged run folder (checkpoint, metrics.csv, config.json); 6 `--out` is in use by another
 * run (its lock names the holder); 7 a file cannot be written (disk full, read-only place, `--out` on a
 * file); 8 the run does not fit the device; 130/143 after SIGINT/SIGTERM (a checkpoint and the summary
 * were written; the message says how to resume); 1 anything unexpected. Every error is one line on
 * stderr naming the cause and the file or flag; `--debug` (or `SUPCON_DEBUG=1`) adds the stack trace.
 * @module
 */
import { environmentVariable } from "../engine/environment.ts";
import { CliError, CliHelp, parseTrainArgs } from "./section5/config.ts";
import { ConfigError } from "./section5/config.ts";
import {
  DataError,
  DeviceLimitError,
  NonFiniteLossError,
  RunFileError,
  shellQuote,
  trainRun,
} from "./section5/trainer.ts";
import { printJsonLine } from "./lib/summary.ts";
import { CheckpointError } from "../train/checkpoint.ts";
import { isFileWriteError } from "../train/atomic.ts";
import { RunLockedError } from "../train/lock.ts";
import { GpuError } from "../engine/device.ts";
import { signalExitCode } from "../train/signals.ts";

/** Exit codes of `deno task train` by error class (see the module doc). */
export const EXIT_CODES = {
  usage: 2,
  diverged: 3,
  data: 4,
  runFolder: 5,
  locked: 6,
  write: 7,
  device: 8,
  other: 1,
} as const;

/** The exit code and one-line message of an error thrown by a run. */
export function describeError(e: unknown): { code: number; message: string } {
  const line = (x: unknown) => (x instanceof Error ? x.message : String(x)).split("\n")[0];
  if (e instanceof NonFiniteLossError) return { code: EXIT_CODES.diverged, message: line(e) };
  if (e instanceof ConfigError || e instanceof CliError) return { code: EXIT_CODES.usage, message: line(e) };
  if (e instanceof DataError) return { code: EXIT_CODES.data, message: line(e) };
  if (e instanceof CheckpointError || e instanceof RunFileError) {
    return { code: EXIT_CODES.runFolder, message: line(e) };
  }
  if (e instanceof RunLockedError) return { code: EXIT_CODES.locked, message: line(e) };
  if (isFileWriteError(e)) {
    const cause = e.cause instanceof Error && e.cause.message.startsWith("--out ") ? line(e.cause) : line(e);
    return { code: EXIT_CODES.write, message: cause };
  }
  if (e instanceof DeviceLimitError) return { code: EXIT_CODES.device, message: line(e) };
  if (e instanceof GpuError) {
    return { code: EXIT_CODES.device, message: `the device refused the work: ${line(e)}` };
  }
  if (e instanceof RangeError && /array length|allocation/i.test(e.message)) {
    return { code: EXIT_CODES.device, message: `out of memory: ${line(e)}` };
  }
  const name = e instanceof Error ? `${e.name}: ` : "";
  return { code: EXIT_CODES.other, message: `${name}${line(e)} (run with --debug for the stack trace)` };
}

/** Runs the CLI with `args`; returns the process exit code. */
export async function main(argsIn: readonly string[]): Promise<number> {
  const debug = argsIn.includes("--debug") || environmentVariable("SUPCON_DEBUG") === "1";
  const args = argsIn.filter((a) => a !== "--debug");
  let config;
  try {
    config = parseTrainArgs(args);
  } catch (e) {
    if (e instanceof CliHelp) {
      console.log(e.text);
      return 0;
    }
    if (e instanceof CliError) {
      console.error(`error: ${e.message}\nRun with --help for usage.`);
      return 2;
    }
    throw e;
  }
  try {
    const result = await trainRun(config);
    if (result.status === "interrupted") {
      const argv = args.filter((a) => a !== "--resume");
      const code = signalExitCode(result.signal ?? "SIGINT");
      if (!(await hasCheckpoint(result.paths.checkpoint))) {
        console.error(
          `Interrupted (${result.signal}) before the first step; nothing to resume: run the same command again`,
        );
      } else {
        console.error(
          `Interrupted (${result.signal}) at step ${result.step} of ${result.iterations}; checkpoint: ${result.paths.checkpoint}\n` +
            `Resume with: deno task train ${[...argv, "--resume"].map(shellQuote).join(" ")}`,
        );
      }
      if (config.json) printJsonLine({ status: result.status, step: result.step, outDir: result.outDir });
      return code;
    }
    const m = result.metrics;
    if (!config.quiet) {
      console.error(
        `done: ${result.step} iterations, train error ${m ? (100 * m.trainError).toFixed(2) : "?"}%, ` +
          `test error ${m ? (100 * m.testError).toFixed(2) : "?"}%, ${
            result.imagesPerSecond.toFixed(1)
          } images/s; ` +
          `run folder ${result.outDir}`,
      );
    }
    if (config.json) {
      printJsonLine({
        status: result.status,
        step: result.step,
        metrics: m,
        imagesPerSecond: result.imagesPerSecond,
        outDir: result.outDir,
        paths: result.paths,
      });
    }
    if (result.signal) {
      console.error(
        `${result.signal} during the finish: the run is complete and summary.json written; ` +
          `--resume redraws what was skipped`,
      );
      return signalExitCode(result.signal);
    }
    return 0;
  } catch (e) {
    const { code, message } = describeError(e);
    console.error(`error: ${message}`);
    if (debug) console.error(e instanceof Error ? e.stack : e);
    return code;
  }
}

async function hasCheckpoint(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
