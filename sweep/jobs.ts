/**
 * DIR/jobs.json: every submission of a sweep (`{ submissions: [...] }`), newest last: the Slurm array
 * job ids (what `status` asks squeue/sacct about) and the local runs.
 * @module
 */
import { join } from "node:path";
import { writeJsonAtomic } from "../train/atomic.ts";
import { SWEEP_FILES } from "./plan.ts";

/** One submission. */
export interface Submission {
  /** Backend. */
  backend: "slurm" | "local";
  /** ISO time of submission. */
  at: string;
  /** The cells' indices. */
  cells: number[];
  /** Slurm: the array job's id. */
  jobId?: string;
  /** Slurm: the batch script. */
  script?: string;
  /** Local: the submitting process. */
  pid?: number;
  /** Local: each cell's last exit code, once it ended. */
  exitCodes?: Record<string, number>;
}

/** jobs.json. */
export interface JobsFile {
  /** Every submission, oldest first. */
  submissions: Submission[];
}

/** Reads DIR/jobs.json (empty when absent or unreadable). */
export async function readJobs(dir: string): Promise<JobsFile> {
  try {
    const j = JSON.parse(await Deno.readTextFile(join(dir, SWEEP_FILES.jobs)));
    return Array.isArray(j?.submissions) ? j as JobsFile : { submissions: [] };
  } catch {
    return { submissions: [] };
  }
}

/** Appends (or, with the same `at` and backend, replaces) a submission in DIR/jobs.json. */
export async function recordSubmission(dir: string, s: Submission): Promise<void> {
  const jobs = await readJobs(dir);
  const i = jobs.submissions.findIndex((x) => x.at === s.at && x.backend === s.backend && x.pid === s.pid);
  if (i >= 0) jobs.submissions[i] = s;
  else jobs.submissions.push(s);
  await writeJsonAtomic(join(dir, SWEEP_FILES.jobs), jobs);
}

/** The Slurm array job ids of every submission. */
export function slurmJobIds(jobs: JobsFile): string[] {
  return jobs.submissions.flatMap((s) => (s.backend === "slurm" && s.jobId ? [s.jobId] : []));
}
