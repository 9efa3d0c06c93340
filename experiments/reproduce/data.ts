/**
 * Where `deno task reproduce` finds the Section 5 data: `--data PATH`, a `cifar-10-batches-bin` folder
 * found on the search path, or the built-in synthetic dataset.
 * @module
 */
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { cifar10Files } from "../../data/cifar.ts";
import { CliError } from "../lib/cli.ts";

/** Where the Section 5 data come from. */
export interface DataChoice {
  /** Dataset trained on. */
  dataset: "cifar10" | "synthetic";
  /** Its folder ("" for synthetic). */
  path: string;
  /** How it was chosen, in words. */
  note: string;
}

/** The data flags of `deno task reproduce`. */
export interface DataFlags {
  /** CIFAR-10 folder (absent: search). */
  data?: string;
  /** Section 5 data. */
  dataset: "auto" | "cifar10" | "synthetic";
}

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** True when `dir` holds the CIFAR-10 binary files (five training batches and the test batch). */
export function isCifar10Dir(dir: string): boolean {
  try {
    return [...cifar10Files("train"), ...cifar10Files("test")].every((f) =>
      Deno.statSync(join(dir, f)).isFile
    );
  } catch {
    return false;
  }
}

/**
 * Folders searched for CIFAR-10 (in order): `../shared/data/cifar-10-batches-bin` relative to the
 * working directory and to the repository, then `./data/cifar-10-batches-bin` (working directory,
 * repository).
 */
export function cifar10Candidates(cwd: string = Deno.cwd(), repo: string = REPO_ROOT): string[] {
  const rel = [join("..", "shared", "data", "cifar-10-batches-bin"), join("data", "cifar-10-batches-bin")];
  const out: string[] = [];
  for (const r of rel) {
    for (const base of [cwd, repo]) {
      const p = resolve(base, r);
      if (!out.includes(p)) out.push(p);
    }
  }
  return out;
}

/** Chooses the Section 5 data; throws CliError when `--data` or `--dataset cifar10` cannot be honoured. */
export function chooseData(cfg: DataFlags): DataChoice {
  if (cfg.dataset === "synthetic") {
    return { dataset: "synthetic", path: "", note: "the built-in synthetic dataset (--dataset synthetic)" };
  }
  if (cfg.data) {
    if (!isCifar10Dir(cfg.data)) {
      throw new CliError(
        `--data: ${cfg.data} is not a CIFAR-10 folder (expected ${
          cifar10Files("train")[0]
        } … test_batch.bin)`,
      );
    }
    return { dataset: "cifar10", path: cfg.data, note: `CIFAR-10 from --data ${cfg.data}` };
  }
  const found = cifar10Candidates().find(isCifar10Dir);
  if (found) return { dataset: "cifar10", path: found, note: `CIFAR-10 found at ${found}` };
  if (cfg.dataset === "cifar10") {
    throw new CliError(
      `--dataset cifar10: no CIFAR-10 folder found (looked in ${
        cifar10Candidates().join(", ")
      }); pass --data PATH`,
    );
  }
  return {
    dataset: "synthetic",
    path: "",
    note: "the built-in synthetic dataset (no CIFAR-10 folder given or found; pass --data PATH to use one)",
  };
}
