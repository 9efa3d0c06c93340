/**
 * A real single-node Slurm for tests: Debian's `slurm-wlm` and `munge`, started as root in a temporary
 * folder. {@link startSlurm} writes a slurm.conf for this host (`hostname -s`, its CPUs and memory;
 * `SlurmUser=root`, `ProctrackType=proctrack/linuxproc`, `TaskPlugin=task/none`,
 * `SelectType=select/cons_tres`, state and spool folders in the temporary folder, ports of its own so
 * that two test runs on one machine do not meet), makes the munge key in /etc/munge if it is missing,
 * starts `munged` (as the munge user, on a socket of its own), `slurmctld` and `slurmd` in the
 * foreground as children, and waits until `sinfo` shows the node idle. {@link SlurmCluster.stop}
 * stops only those three processes, by PID.
 *
 * {@link slurmUnavailable} says why it cannot run here (not root, not Linux, a binary missing), so a
 * test can skip with that reason. Commands reach this cluster through {@link SlurmCluster.env}
 * (`SLURM_CONF`).
 *
 * ```sh
 * deno run -A tests/slurm_cluster.ts   # start one by hand, print its SLURM_CONF, stop on Ctrl-C
 * ```
 * @module
 */
import { join } from "node:path";

/** The binaries the cluster needs. */
export const SLURM_BINARIES = [
  "/usr/bin/setpriv",
  "/usr/sbin/munged",
  "/usr/sbin/slurmctld",
  "/usr/sbin/slurmd",
  "/usr/bin/sbatch",
  "/usr/bin/sinfo",
  "/usr/bin/squeue",
  "/usr/bin/scontrol",
  "/usr/bin/scancel",
] as const;

/**
 * Why a single-node Slurm cannot be started here, or null when it can. Needs `--allow-read` and
 * `--allow-run` only (the user id comes from `id -u`).
 */
export async function slurmUnavailable(): Promise<string | null> {
  if (Deno.build.os !== "linux") return `not Linux (${Deno.build.os})`;
  let uid: string;
  try {
    uid = await output("id", ["-u"]);
  } catch (e) {
    return `cannot read the user id: ${(e as Error).message.split("\n")[0]}`;
  }
  if (uid !== "0") return `not root (uid ${uid}): slurmd and munged need root`;
  for (const b of SLURM_BINARIES) {
    try {
      Deno.statSync(b);
    } catch {
      return `${b} is missing (apt-get install slurm-wlm munge)`;
    }
  }
  return null;
}

async function output(cmd: string, args: string[], env?: Record<string, string>): Promise<string> {
  const r = await new Deno.Command(cmd, { args, env, stdout: "piped", stderr: "piped" }).output();
  if (!r.success) {
    throw new Error(`${cmd} ${args.join(" ")}: exit ${r.code}: ${new TextDecoder().decode(r.stderr).trim()}`);
  }
  return new TextDecoder().decode(r.stdout).trim();
}

/** A started single-node cluster. */
export interface SlurmCluster {
  /** The temporary folder (slurm.conf, state, spool, logs). */
  dir: string;
  /** Path of slurm.conf. */
  conf: string;
  /** The node's name (`hostname -s`). */
  node: string;
  /** Environment that points Slurm's commands at this cluster. */
  env: Record<string, string>;
  /** Stops the daemons this helper started (by PID) and removes the folder unless `keep`. */
  stop(options?: { keep?: boolean }): Promise<void>;
}

/** What the slurm.conf of {@link startSlurm} holds. */
export function slurmConf(o: {
  dir: string;
  node: string;
  cpus: number;
  memoryMb: number;
  ctldPort: number;
  slurmdPort: number;
  mungeSocket: string;
}): string {
  return [
    `ClusterName=supcontest`,
    `SlurmctldHost=${o.node}`,
    `SlurmUser=root`,
    `SlurmdUser=root`,
    `SlurmctldPort=${o.ctldPort}`,
    `SlurmdPort=${o.slurmdPort}`,
    `AuthType=auth/munge`,
    `CredType=cred/munge`,
    // cred_expire: a requeued job waits cred_expire + 1 s before it may start again (default 120).
    `AuthInfo=socket=${o.mungeSocket},cred_expire=10`,
    `StateSaveLocation=${join(o.dir, "state")}`,
    `SlurmdSpoolDir=${join(o.dir, "spool")}`,
    `SlurmctldPidFile=${join(o.dir, "slurmctld.pid")}`,
    `SlurmdPidFile=${join(o.dir, "slurmd.pid")}`,
    `SlurmctldLogFile=${join(o.dir, "slurmctld.log")}`,
    `SlurmdLogFile=${join(o.dir, "slurmd.log")}`,
    `ProctrackType=proctrack/linuxproc`,
    `TaskPlugin=task/none`,
    `SelectType=select/cons_tres`,
    `SelectTypeParameters=CR_Core`,
    `SchedulerType=sched/backfill`,
    `SchedulerParameters=sched_interval=2`,
    `MpiDefault=none`,
    `ReturnToService=2`,
    `JobRequeue=1`,
    `JobCompType=jobcomp/none`,
    `JobAcctGatherType=jobacct_gather/none`,
    `AccountingStorageType=accounting_storage/none`,
    `KillWait=10`,
    `MinJobAge=300`,
    `SlurmctldTimeout=30`,
    `SlurmdTimeout=30`,
    `NodeName=${o.node} CPUs=${o.cpus} RealMemory=${o.memoryMb} State=UNKNOWN`,
    `PartitionName=test Nodes=${o.node} Default=YES MaxTime=INFINITE State=UP`,
    "",
  ].join("\n");
}

/** Ports of this process's own (two test runs on one machine must not share them). */
function portsFor(pid: number): [number, number] {
  const base = 20000 + (pid % 9000) * 4;
  return [base, base + 1];
}

async function waitFor(what: string, ok: () => Promise<boolean>, timeoutMs: number, log: () => string) {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await ok().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`slurm test cluster: ${what} did not happen within ${timeoutMs / 1000} s\n${log()}`);
}

/**
 * Starts munged, slurmctld and slurmd for this host in a temporary folder and waits until the node
 * is idle (see the module doc). Throws when {@link slurmUnavailable} names a reason.
 */
export async function startSlurm(): Promise<SlurmCluster> {
  const why = await slurmUnavailable();
  if (why) throw new Error(`slurm test cluster: ${why}`);
  const dir = await Deno.makeTempDir({ prefix: "supcon-slurm-" });
  const children: Deno.ChildProcess[] = [];
  let mungeDir = "";
  const tail = (f: string) => {
    try {
      return `${f}:\n${Deno.readTextFileSync(f).split("\n").slice(-15).join("\n")}`;
    } catch {
      return `${f}: (none)`;
    }
  };
  const logs = () =>
    [join(mungeDir, "munged.log"), join(dir, "slurmctld.log"), join(dir, "slurmd.log")].map(tail).join("\n");
  const stop = async (options: { keep?: boolean } = {}) => {
    // Reverse order: slurmd, slurmctld, then munged; each by the PID this helper started.
    for (const c of children.splice(0).reverse()) {
      try {
        c.kill("SIGTERM");
      } catch { /* already gone */ }
      const timer = setTimeout(() => {
        try {
          c.kill("SIGKILL");
        } catch { /* gone */ }
      }, 10_000);
      await c.status;
      clearTimeout(timer);
    }
    if (mungeDir) await Deno.remove(mungeDir, { recursive: true }).catch(() => {});
    if (!options.keep) await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  try {
    const node = await output("hostname", ["-s"]);
    // What slurmd detects on this machine (its CPUs and memory), as `slurmd -C` prints them.
    const detected = await output("/usr/sbin/slurmd", ["-C"]);
    const cpus = Number(/\bCPUs=(\d+)/.exec(detected)?.[1] ?? navigator.hardwareConcurrency ?? 1);
    const memoryMb = Math.max(1, Number(/\bRealMemory=(\d+)/.exec(detected)?.[1] ?? 1024) - 512);
    for (const d of ["state", "spool"]) await Deno.mkdir(join(dir, d));
    await Deno.chmod(dir, 0o755);

    // munge: the key (created once, as Debian's package would), then a munged of our own.
    const key = "/etc/munge/munge.key";
    try {
      Deno.statSync(key);
    } catch {
      await Deno.mkdir("/etc/munge", { recursive: true });
      const bytes = crypto.getRandomValues(new Uint8Array(128));
      await Deno.writeFile(key, bytes, { mode: 0o400 });
      await output("chown", ["-R", "munge:munge", "/etc/munge"]);
      await Deno.chmod("/etc/munge", 0o700);
    }
    // munged (as the munge user) must reach its folder: under /run, not a temporary folder that a
    // mode-0700 /tmp would hide from it.
    mungeDir = await Deno.makeTempDir({ dir: "/run", prefix: "supcon-munge-" });
    await output("chown", ["munge:munge", mungeDir]);
    await Deno.chmod(mungeDir, 0o755);
    const mungeSocket = join(mungeDir, "munge.socket");
    children.push(
      // setpriv execs munged as the munge user: the PID we hold is munged's own.
      new Deno.Command("setpriv", {
        args: [
          "--reuid=munge",
          "--regid=munge",
          "--clear-groups",
          "/usr/sbin/munged",
          "--foreground",
          `--socket=${mungeSocket}`,
          `--pid-file=${join(mungeDir, "munged.pid")}`,
          `--log-file=${join(mungeDir, "munged.log")}`,
          `--seed-file=${join(mungeDir, "munged.seed")}`,
          "--num-threads=2",
        ],
        stdout: "null",
        stderr: "null",
      }).spawn(),
    );
    await waitFor(
      "munged's socket",
      async () => (await Deno.stat(mungeSocket)).isSocket === true,
      15_000,
      logs,
    );

    const [ctldPort, slurmdPort] = portsFor(Deno.pid);
    const conf = join(dir, "slurm.conf");
    await Deno.writeTextFile(
      conf,
      slurmConf({ dir, node, cpus, memoryMb, ctldPort, slurmdPort, mungeSocket }),
    );
    const env = { SLURM_CONF: conf };
    children.push(
      new Deno.Command("/usr/sbin/slurmctld", {
        args: ["-D", "-i", "-f", conf],
        env,
        stdout: "null",
        stderr: "null",
      }).spawn(),
    );
    children.push(
      new Deno.Command("/usr/sbin/slurmd", {
        args: ["-D", "-f", conf, "-N", node],
        env,
        stdout: "null",
        stderr: "null",
      }).spawn(),
    );
    await waitFor(
      "the node idle in sinfo",
      async () => (await output("sinfo", ["-h", "-N", "-o", "%T"], env)).split("\n").includes("idle"),
      60_000,
      logs,
    );
    return { dir, conf, node, env, stop };
  } catch (e) {
    await stop({ keep: true });
    throw e;
  }
}

if (import.meta.main) {
  const cluster = await startSlurm();
  console.log(`export SLURM_CONF=${cluster.conf}`);
  await new Promise<void>((resolve) => {
    Deno.addSignalListener("SIGINT", () => resolve());
    Deno.addSignalListener("SIGTERM", () => resolve());
  });
  await cluster.stop();
}
