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
 * Exit codes: 0 done, 2 usage error, 3 diverged (non-finite loss), 1 other errors;
 * 130/143 after SIGINT/SIGTERM (a checkpoint was written; the message says how to resume).
 * @module
 */
import { CliError, CliHelp, parseTrainArgs } from "./section5/config.ts";
import { ConfigError } from "./section5/config.ts";
import { NonFiniteLossError, trainRun } from "./section5/trainer.ts";
import { printJsonLine } from "./lib/summary.ts";

/** Runs the CLI with `args`; returns the process exit code. */
export async function main(args: readonly string[]): Promise<number> {
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
      console.error(
        `Interrupted after step ${result.step} of ${result.iterations}; checkpoint: ${result.paths.checkpoint}\n` +
          `Resume with: deno task train ${[...argv, "--resume"].join(" ")}`,
      );
      if (config.json) printJsonLine({ status: result.status, step: result.step, outDir: result.outDir });
      return 130;
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
    return 0;
  } catch (e) {
    if (e instanceof NonFiniteLossError) {
      console.error(`error: ${e.message}`);
      return 3;
    }
    if (e instanceof ConfigError) {
      console.error(`error: ${e.message}`);
      return 2;
    }
    throw e;
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
