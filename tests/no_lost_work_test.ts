/**
 * No lost work, no stack traces (issue 11): `deno task train` as a demanding user meets it. Tiny runs
 * (ResNet-18 ×1/16, 16×16 synthetic images, batch 16, 6 steps) are signalled at named points
 * (`SUPCON_FAULT_POINT` pauses the run there, so nothing depends on timing), killed, locked out,
 * fed damaged checkpoints, run folders and data, and oversized requests; each must end with its exit
 * code, one line on stderr and no stack trace, and every interrupted run must resume to the
 * uninterrupted run's metrics.csv rows (timing columns aside) and checkpoint tensors, bit for bit.
 *
 * The reference run and the resumes run in this process through the CLI's `main`; the runs that are
 * signalled or killed run as `deno run experiments/train.ts` subprocesses (what `deno task train`
 * runs).
 */
import nodeAssert from "node:assert/strict";
import { join } from "node:path";
import { gpuTest, setup } from "./util.ts";
import { main } from "../experiments/train.ts";
import { main as theoryMain } from "../theory/cli.ts";
import { readCsv } from "../train/csv.ts";
import { decodeSafetensors, encodeSafetensors } from "../train/safetensors.ts";
import { checkpointDigest, CHECKSUM_KEY } from "../train/checkpoint.ts";
import { LOCK_FILE } from "../train/lock.ts";

function assert(cond: unknown, msg?: string): asserts cond {
  nodeAssert.ok(cond, msg ?? "assertion failed");
}
function assertEquals<T>(actual: T, expected: T, msg?: string): void {
  nodeAssert.deepStrictEqual(actual, expected, msg ?? "values differ");
}
function assertMatch(text: string, re: RegExp): void {
  nodeAssert.match(text, re);
}

const TINY = [
  "--width=0.0625",
  "--synthetic-size=16",
  "--synthetic-n=32",
  "--synthetic-test-n=16",
  "--synthetic-classes=4",
  "--batch=16",
  "--iterations=6",
  "--log-every=1",
  "--checkpoint-every=2",
  "--eval-batch=16",
  "--quiet",
];

/** Runs `main` in this process, capturing what it prints on stderr. */
async function run(args: string[]): Promise<{ code: number; stderr: string[] }> {
  const lines: string[] = [];
  const orig = console.error;
  console.error = (...a: unknown[]) => lines.push(a.map(String).join(" "));
  try {
    const code = await main(args);
    return { code, stderr: lines.join("\n").split("\n").filter((l) => l.trim() !== "") };
  } finally {
    console.error = orig;
  }
}

/** Lines that are not the adapter's own noise (the Vulkan loader's XDG_RUNTIME_DIR complaint). */
function ourLines(text: string): string[] {
  return text.split("\n").filter((l) => l.trim() !== "" && !l.includes("XDG_RUNTIME_DIR"));
}

/** A subprocess of the CLI, paused at `point` (SUPCON_FAULT_POINT) until signalled. */
class Child {
  readonly proc: Deno.ChildProcess;
  #stderr = "";
  #reader: Promise<void>;
  constructor(args: string[], env: Record<string, string> = {}, command?: string[]) {
    const argv = command ?? [
      Deno.execPath(),
      "run",
      "--allow-read",
      "--allow-write",
      "--allow-env",
      "experiments/train.ts",
    ];
    const proc = this.proc = new Deno.Command(argv[0], {
      args: [...argv.slice(1), ...args],
      env,
      stdout: "null",
      stderr: "piped",
    }).spawn();
    this.#reader = (async () => {
      const dec = new TextDecoder();
      for await (const chunk of proc.stderr) this.#stderr += dec.decode(chunk, { stream: true });
    })();
  }
  /** Waits until stderr contains `text` `times` times (or the process ends). */
  async waitFor(text: string, times = 1, timeoutMs = 60_000): Promise<void> {
    const end = performance.now() + timeoutMs;
    let done = false;
    this.proc.status.then(() => (done = true));
    while (this.#stderr.split(text).length - 1 < times) {
      if (done || performance.now() > end) throw new Error(`no "${text}" on stderr:\n${this.#stderr}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  async end(): Promise<{ code: number; signal: string | null; lines: string[] }> {
    const st = await this.proc.status;
    await this.#reader;
    return { code: st.code, signal: st.signal, lines: ourLines(this.#stderr) };
  }
}

const TIMING = new Set(["images_per_s", "elapsed_s"]);

/** metrics.csv rows without the wall-clock columns. */
async function rows(dir: string): Promise<Record<string, string>[]> {
  return (await readCsv(join(dir, "metrics.csv"))).map((r) =>
    Object.fromEntries(Object.entries(r).filter(([k]) => !TIMING.has(k)))
  );
}

/** Every tensor of a run's checkpoint (bytes), and its step. */
async function tensors(dir: string): Promise<{ step: string; t: Record<string, Uint8Array> }> {
  const f = decodeSafetensors(await Deno.readFile(join(dir, "checkpoint.safetensors")));
  const t: Record<string, Uint8Array> = {};
  for (const [k, v] of Object.entries(f.tensors)) {
    t[k] = new Uint8Array(v.data.buffer, v.data.byteOffset, v.data.byteLength);
  }
  return { step: f.metadata.step, t };
}

async function assertSameRun(a: string, b: string): Promise<void> {
  assertEquals(await rows(b), await rows(a), "metrics.csv rows (timing columns aside)");
  assertEquals(await tensors(b), await tensors(a), "checkpoint tensors");
}

async function noTmp(dir: string): Promise<void> {
  for await (const e of Deno.readDir(dir)) assert(!/\.tmp-/.test(e.name), `left behind: ${e.name}`);
}

async function summary(dir: string): Promise<Record<string, unknown>> {
  return JSON.parse(await Deno.readTextFile(join(dir, "summary.json")));
}

function oneLine(lines: string[], pattern: RegExp): void {
  assertEquals(lines.length, 1, `one line expected:\n${lines.join("\n")}`);
  assertMatch(lines[0], pattern);
  assert(!/^\s+at /m.test(lines.join("\n")), "no stack trace");
}

/** TINY with `flags` replacing its own of the same name. */
function tiny(...flags: string[]): string[] {
  const names = new Set(flags.map((f) => f.split("=")[0]));
  return [...TINY.filter((a) => !names.has(a.split("=")[0])), ...flags];
}

let reference = "";
async function referenceRun(): Promise<string> {
  if (reference) return reference;
  await setup();
  reference = await Deno.makeTempDir({ prefix: "nlw_ref_" });
  const r = await run([...TINY, `--out=${reference}`]);
  assertEquals(r.code, 0, r.stderr.join("\n"));
  return reference;
}

Deno.test({
  name: "signals: one Ctrl-C delivered twice is one request; resume is bit-identical; no tmp, no lock left",
  ...gpuTest,
  async fn() {
    const ref = await referenceRun();
    const out = await Deno.makeTempDir({ prefix: "nlw_int_" });
    const c = new Child([...TINY, `--out=${out}`], { SUPCON_FAULT_POINT: "step#3" });
    await c.waitFor("fault point: step");
    c.proc.kill("SIGINT");
    c.proc.kill("SIGINT"); // the same Ctrl-C, forwarded by npx / deno task
    const r = await c.end();
    assertEquals(r.code, 130, r.lines.join("\n"));
    assert(!r.lines.some((l) => l.includes("second SIGINT")), r.lines.join("\n"));
    assert(r.lines.some((l) => l.startsWith("Resume with: deno task train ")), r.lines.join("\n"));
    await noTmp(out);
    assert(!(await exists(join(out, LOCK_FILE))), "the lock is released");
    assertEquals((await summary(out)).status, "interrupted");
    const resumed = await run([...TINY, `--out=${out}`, "--resume"]);
    assertEquals(resumed.code, 0, resumed.stderr.join("\n"));
    await assertSameRun(ref, out);
    await Deno.remove(out, { recursive: true });
  },
});

const hasSetsid = (() => {
  try {
    return new Deno.Command("setsid", { args: ["--version"], stdout: "null", stderr: "null" }).outputSync()
      .success;
  } catch {
    return false;
  }
})();

Deno.test({
  name: "signals: through `deno task`, Ctrl-C to the terminal's process group (the task runner forwards " +
    "it too) counts once; the printed resume command is shell-quoted and works",
  ignore: !hasSetsid,
  ...gpuTest,
  async fn() {
    const ref = await referenceRun();
    const parent = await Deno.makeTempDir({ prefix: "nlw_task_" });
    const out = join(parent, "run folder's name");
    // setsid: the task runner and the trainer in a process group of their own, as under a terminal.
    const c = new Child([...TINY, `--out=${out}`], { SUPCON_FAULT_POINT: "step#3" }, [
      "setsid",
      Deno.execPath(),
      "task",
      "--quiet",
      "train",
    ]);
    await c.waitFor("fault point: step");
    Deno.kill(-c.proc.pid, "SIGINT");
    const r = await c.end();
    assertEquals(r.code, 130, r.lines.join("\n"));
    assert(!r.lines.some((l) => l.includes("second SIGINT")), r.lines.join("\n"));
    const resume = r.lines.find((l) => l.startsWith("Resume with: deno task train "));
    assert(resume?.includes(`'--out=${out.replace("'", `'"'"'`)}'`), `quoted --out: ${resume}`);
    await noTmp(out);
    // Run the printed command through a shell (with Deno as `deno`).
    const cmd = resume!.slice("Resume with: ".length).replace(/^deno /, `${Deno.execPath()} `);
    const sh = await new Deno.Command("sh", { args: ["-c", cmd], stdout: "null", stderr: "piped" }).output();
    assertEquals(sh.code, 0, new TextDecoder().decode(sh.stderr));
    await assertSameRun(ref, out);
    await Deno.remove(parent, { recursive: true });
  },
});

Deno.test({
  name: "signals: SIGTERM during a checkpoint write exits 143 with the checkpoint renamed; SIGKILL there " +
    "leaves a tmp file and a stale lock that the next start removes and takes over",
  ...gpuTest,
  async fn() {
    const ref = await referenceRun();
    const out = await Deno.makeTempDir({ prefix: "nlw_term_" });
    const env = { SUPCON_FAULT_POINT: "write:checkpoint.safetensors#2" };
    let c = new Child([...TINY, `--out=${out}`], env);
    await c.waitFor("fault point: write:checkpoint.safetensors");
    c.proc.kill("SIGTERM");
    let r = await c.end();
    assertEquals(r.code, 143, r.lines.join("\n"));
    await noTmp(out);
    assertEquals((await tensors(out)).step, "4");
    // Killed while writing its next checkpoint (step 6): the tmp file is the only trace.
    c = new Child([...TINY, `--out=${out}`, "--resume"], {
      SUPCON_FAULT_POINT: "write:checkpoint.safetensors#1",
    });
    await c.waitFor("fault point: write:checkpoint.safetensors");
    c.proc.kill("SIGKILL");
    r = await c.end();
    assertEquals(r.signal, "SIGKILL");
    let tmp = 0;
    for await (const e of Deno.readDir(out)) if (/\.tmp-/.test(e.name)) tmp++;
    assertEquals(tmp, 1, "the killed write's tmp file");
    assert(await exists(join(out, LOCK_FILE)), "a stale lock");
    const resumed = await run([...TINY, `--out=${out}`, "--resume"]);
    assertEquals(resumed.code, 0, resumed.stderr.join("\n"));
    await noTmp(out);
    await assertSameRun(ref, out);
    await Deno.remove(out, { recursive: true });
  },
});

Deno.test({
  name: "signals: a deliberate second Ctrl-C after the window exits at once, leaving no tmp file and no lock",
  ...gpuTest,
  async fn() {
    const out = await Deno.makeTempDir({ prefix: "nlw_twice_" });
    const c = new Child([...TINY, `--out=${out}`], {
      SUPCON_FAULT_POINT: "write:checkpoint.safetensors#1",
      SUPCON_FAULT_HOLD: "1",
    });
    await c.waitFor("fault point: write:checkpoint.safetensors");
    c.proc.kill("SIGINT");
    await new Promise((res) => setTimeout(res, 1800));
    c.proc.kill("SIGINT");
    const r = await c.end();
    assertEquals(r.code, 130);
    assert(
      r.lines.some((l) => l.includes("second SIGINT: exiting without a checkpoint")),
      r.lines.join("\n"),
    );
    await noTmp(out);
    assert(!(await exists(join(out, LOCK_FILE))), "the lock is released");
    await Deno.remove(out, { recursive: true });
  },
});

Deno.test({
  name: "signals: during the final evaluation the run stops at once and --resume evaluates; during the " +
    "finish summary.json is still right, and --resume redoes a lost summary",
  ...gpuTest,
  async fn() {
    const ref = await referenceRun();
    const out = await Deno.makeTempDir({ prefix: "nlw_eval_" });
    let c = new Child([...TINY, `--out=${out}`], { SUPCON_FAULT_POINT: "evaluate" });
    await c.waitFor("fault point: evaluate");
    c.proc.kill("SIGINT");
    let r = await c.end();
    assertEquals(r.code, 130, r.lines.join("\n"));
    let s = await summary(out);
    assertEquals([s.status, s.step, s.metrics], ["interrupted", 6, null]);
    // Resumed, then signalled after the final checkpoint (the finish phase).
    c = new Child([...TINY, `--out=${out}`, "--resume"], { SUPCON_FAULT_POINT: "finish" });
    await c.waitFor("fault point: finish");
    c.proc.kill("SIGTERM");
    r = await c.end();
    assertEquals(r.code, 143, r.lines.join("\n"));
    s = await summary(out);
    assertEquals([s.status, s.step], ["completed", 6]);
    assertEquals(s.metrics, (await summary(ref)).metrics);
    await assertSameRun(ref, out);
    // The figure was skipped: --resume redraws it; a lost summary is rewritten the same way.
    let again = await run([...TINY, `--out=${out}`, "--resume"]);
    assertEquals(again.code, 0, again.stderr.join("\n"));
    assert(await exists(join(out, "loss.svg")));
    await Deno.remove(join(out, "summary.json"));
    again = await run([...TINY, `--out=${out}`, "--resume"]);
    assertEquals(again.code, 0, again.stderr.join("\n"));
    assertEquals((await summary(out)).metrics, (await summary(ref)).metrics);
    again = await run([...TINY, `--out=${out}`, "--resume"]);
    oneLine(again.stderr, /^error: --resume: the run in .* is already complete/);
    assertEquals(again.code, 2);
    await Deno.remove(out, { recursive: true });
  },
});

Deno.test({
  name:
    "locks: a second run into a live run's folder fails at once naming the holder; stale locks are taken over",
  ...gpuTest,
  async fn() {
    await setup();
    const out = await Deno.makeTempDir({ prefix: "nlw_lock_" });
    const c = new Child([...TINY, `--out=${out}`], { SUPCON_FAULT_POINT: "step#1" });
    await c.waitFor("fault point: step");
    const second = await run([...TINY, `--out=${out}`]);
    assertEquals(second.code, 6);
    oneLine(second.stderr, new RegExp(`^error: ${out} is in use by another run \\(pid ${c.proc.pid} on `));
    c.proc.kill("SIGKILL");
    await c.end();
    // The holder is gone (SIGKILL): its lock file is left but nobody holds it; a fresh run takes it over.
    assert(await exists(join(out, LOCK_FILE)));
    const third = await run([...TINY, "--iterations=2", `--out=${out}`]);
    assertEquals(third.code, 0, third.stderr.join("\n"));
    assert(!(await exists(join(out, LOCK_FILE))));
    await Deno.remove(out, { recursive: true });
  },
});

Deno.test({
  name:
    "signals: at startup the run stops before any step, says there is nothing to resume, and frees the folder",
  ...gpuTest,
  async fn() {
    const out = await Deno.makeTempDir({ prefix: "nlw_start_" });
    const c = new Child([...TINY, `--out=${out}`], { SUPCON_FAULT_POINT: "startup" });
    await c.waitFor("fault point: startup");
    c.proc.kill("SIGTERM");
    const r = await c.end();
    assertEquals(r.code, 143, r.lines.join("\n"));
    assert(r.lines.some((l) => /before the first step; nothing to resume/.test(l)), r.lines.join("\n"));
    assertEquals((await summary(out)).status, "interrupted");
    assert(!(await exists(join(out, LOCK_FILE))));
    await noTmp(out);
    const again = await run([...TINY, "--iterations=1", `--out=${out}`]);
    assertEquals(again.code, 0, again.stderr.join("\n"));
    await Deno.remove(out, { recursive: true });
  },
});

Deno.test({
  name: "signals: SIGUSR1 writes a checkpoint and the run goes on; the run resumes bit-identically",
  ...gpuTest,
  async fn() {
    const ref = await referenceRun();
    const out = await Deno.makeTempDir({ prefix: "nlw_usr1_" });
    const c = new Child([...tiny("--checkpoint-every=0"), `--out=${out}`], {
      SUPCON_FAULT_POINT: "step#2,step#4",
    });
    await c.waitFor("fault point: step");
    c.proc.kill("SIGUSR1");
    await c.waitFor("fault point: step", 2);
    assertEquals((await tensors(out)).step, "2", "the checkpoint SIGUSR1 asked for");
    c.proc.kill("SIGINT");
    const r = await c.end();
    assertEquals(r.code, 130, r.lines.join("\n"));
    assertEquals((await tensors(out)).step, "4");
    const resumed = await run([...tiny("--checkpoint-every=0"), `--out=${out}`, "--resume"]);
    assertEquals(resumed.code, 0, resumed.stderr.join("\n"));
    await assertSameRun(ref, out);
    await Deno.remove(out, { recursive: true });
  },
});

Deno.test({
  name: "signals: during an SC probe inside the loop (--eval-every) the run stops; the resumed run redoes " +
    "that evaluation and its row first, bit-identically",
  ...gpuTest,
  async fn() {
    await setup();
    const sc = tiny("--loss=sc", "--eval-every=3", "--probe-iterations=5");
    const ref = await Deno.makeTempDir({ prefix: "nlw_scref_" });
    const a = await run([...sc, `--out=${ref}`]);
    assertEquals(a.code, 0, a.stderr.join("\n"));
    const out = await Deno.makeTempDir({ prefix: "nlw_probe_" });
    const c = new Child([...sc, `--out=${out}`], { SUPCON_FAULT_POINT: "probe#1" });
    await c.waitFor("fault point: probe");
    c.proc.kill("SIGTERM");
    const r = await c.end();
    assertEquals(r.code, 143, r.lines.join("\n"));
    assertEquals((await tensors(out)).step, "3");
    await noTmp(out);
    const resumed = await run([...sc, `--out=${out}`, "--resume"]);
    assertEquals(resumed.code, 0, resumed.stderr.join("\n"));
    await assertSameRun(ref, out);
    await Deno.remove(out, { recursive: true });
    await Deno.remove(ref, { recursive: true });
  },
});

/** A copy of the reference run folder to damage. */
async function copyRun(): Promise<string> {
  const ref = await referenceRun();
  const out = await Deno.makeTempDir({ prefix: "nlw_bad_" });
  for await (const e of Deno.readDir(ref)) {
    if (e.isFile) await Deno.copyFile(join(ref, e.name), join(out, e.name));
  }
  return out;
}

/** Rewrites a checkpoint through `edit` with a valid checksum (what a careless tool would produce). */
async function rewrite(
  path: string,
  edit: (f: ReturnType<typeof decodeSafetensors>) => void,
): Promise<void> {
  const f = decodeSafetensors(await Deno.readFile(path));
  edit(f);
  f.metadata[CHECKSUM_KEY] = await checkpointDigest(f.tensors, f.metadata);
  await Deno.writeFile(path, encodeSafetensors(f.tensors, f.metadata));
}

Deno.test({
  name: "verified checkpoints: truncation, a header edit, a data edit, NaN and a foreign model are refused " +
    "in one line naming the file (exit 5), unless the previous checkpoint is sound (a warning, and it is " +
    "used); a garbage metrics.csv and a truncated config.json are refused too",
  ...gpuTest,
  async fn() {
    const more = [...TINY.filter((a) => !a.startsWith("--iterations")), "--iterations=8", "--resume"];
    const cases: [string, (dir: string, ckpt: string) => Promise<void>, RegExp][] = [
      ["truncated", async (_d, p) => {
        const b = await Deno.readFile(p);
        await Deno.writeFile(p, b.subarray(0, b.length - 1000));
      }, /checkpoint\.safetensors: damaged checkpoint: .*truncated/],
      ["step edited in the header", async (_d, p) => {
        const b = await Deno.readFile(p);
        const text = new TextDecoder("latin1").decode(b.subarray(0, 4096));
        const at = text.indexOf(`"step":"6"`);
        assert(at > 0);
        b[at + 8] = "2".charCodeAt(0);
        await Deno.writeFile(p, b);
      }, /checkpoint\.safetensors: checksum mismatch/],
      ["a data byte flipped", async (_d, p) => {
        const b = await Deno.readFile(p);
        b[b.length - 5] ^= 0x40;
        await Deno.writeFile(p, b);
      }, /checkpoint\.safetensors: checksum mismatch/],
      ["NaN in conv1.weight", (_d, p) =>
        rewrite(p, (f) => {
          (f.tensors["conv1.weight"].data as Float32Array)[3] = NaN;
        }), /checkpoint\.safetensors: non-finite values .* in conv1\.weight/],
      ["a foreign model", (_d, p) =>
        rewrite(p, (f) => {
          f.tensors["conv1.weight"] = { dtype: "F32", shape: [5, 3, 3, 3], data: new Float32Array(135) };
        }), /checkpoint\.safetensors: does not fit this run's model/],
      ["garbage metrics.csv", async (d) => {
        await Deno.writeTextFile(join(d, "metrics.csv"), 'step,"lr\nx,"y\n1,2,3\n');
      }, /metrics\.csv: /],
      ["metrics.csv missing its rows", async (d) => {
        const t = await Deno.readTextFile(join(d, "metrics.csv"));
        await Deno.writeTextFile(join(d, "metrics.csv"), t.split("\n").slice(0, 3).join("\n") + "\n");
      }, /metrics\.csv: has 2 rows up to step 6, but the checkpoint .* was written after 7/],
      ["truncated config.json", async (d) => {
        const t = await Deno.readTextFile(join(d, "config.json"));
        await Deno.writeTextFile(join(d, "config.json"), t.slice(0, 40));
      }, /config\.json: not valid JSON/],
    ];
    for (const [what, damage, pattern] of cases) {
      const dir = await copyRun();
      await Deno.remove(join(dir, "checkpoint.prev.safetensors")); // no fallback (tested below)
      await damage(dir, join(dir, "checkpoint.safetensors"));
      const r = await run([...more, `--out=${dir}`]);
      assertEquals(r.code, 5, `${what}: ${r.stderr.join("\n")}`);
      oneLine(r.stderr, new RegExp(`^error: .*${pattern.source}`));
      await Deno.remove(dir, { recursive: true });
    }
    // With the previous checkpoint kept beside it, a damaged newest one is replaced by it, with a warning.
    const dir = await copyRun();
    const b = await Deno.readFile(join(dir, "checkpoint.safetensors"));
    await Deno.writeFile(join(dir, "checkpoint.safetensors"), b.subarray(0, 5000));
    const r = await run([...more, `--out=${dir}`]);
    assertEquals(r.code, 0, r.stderr.join("\n"));
    oneLine(
      r.stderr,
      /^warning: .*checkpoint\.safetensors: damaged checkpoint: .*; resuming from the previous checkpoint .*checkpoint\.prev\.safetensors \(step 6\)/,
    );
    assertEquals([(await summary(dir)).status, (await summary(dir)).step], ["completed", 8]);
    await Deno.remove(dir, { recursive: true });
  },
});

Deno.test({
  name:
    "one-line errors: bad data, --out on a file or a read-only place, sizes beyond the device, bad numbers",
  ...gpuTest,
  async fn() {
    await setup();
    const tmp = await Deno.makeTempDir({ prefix: "nlw_err_" });
    const file = join(tmp, "a-file");
    await Deno.writeTextFile(file, "x");
    const cifar = join(tmp, "cifar");
    await Deno.mkdir(cifar);
    for (
      const n of [
        "data_batch_1",
        "data_batch_2",
        "data_batch_3",
        "data_batch_4",
        "data_batch_5",
        "test_batch",
      ]
    ) {
      await Deno.writeFile(join(cifar, `${n}.bin`), new Uint8Array(3073 * 3 + 100)); // not whole records
    }
    const cases: [string[], number, RegExp][] = [
      [[`--out=${file}`], 7, /^error: --out .*a-file is not a folder/],
      [[`--out=${file}/sub`], 7, /^error: --out .*a-file\/sub is not a folder/],
      [["--out=/proc/nlw-run"], 7, /^error: --out \/proc\/nlw-run: cannot create the run folder/],
      [
        ["--dataset=cifar10", `--data=${cifar}`, `--out=${join(tmp, "c")}`],
        4,
        /^error: .*cifar\/\w+\.bin: truncated record \d+ at byte \d+/,
      ],
      [
        ["--width=1e6", `--out=${join(tmp, "w")}`],
        8,
        /^error: --width 1000000: .*maxStorageBufferBindingSize/,
      ],
      [
        ["--width=6", `--out=${join(tmp, "w6")}`],
        8,
        /^error: --width 6: .*the widest that fits is about --width/,
      ],
      [
        ["--batch=100000", `--out=${join(tmp, "b")}`],
        8,
        /^error: --batch 100000 does not fit the device: .*the largest batch that fits is \d+/,
      ],
    ];
    for (const [args, code, pattern] of cases) {
      const r = await run([...TINY, ...args]);
      assertEquals(r.code, code, `${args.join(" ")}: ${r.stderr.join("\n")}`);
      oneLine(r.stderr, pattern);
    }
    // Refused before any work: nothing written into the run folder.
    assert(!(await exists(join(tmp, "w6", "config.json"))));
    const neg = await run([...TINY, "--batch", "-5", `--out=${join(tmp, "n")}`]);
    assertEquals(neg.code, 2);
    assertMatch(neg.stderr[0], /^error: --batch: value -5 is below the minimum 2 \(must be ≥ 2\)/);
    await Deno.remove(tmp, { recursive: true });
  },
});

async function exists(p: string): Promise<boolean> {
  try {
    await Deno.stat(p);
    return true;
  } catch {
    return false;
  }
}

Deno.test("theory CLI: sizes that would eat memory are capped with a message; integers beyond 2^53 refused", () => {
  const cases: [string[], RegExp][] = [
    [
      ["sc-bound", "--N", "50000", "--K", "10", "--b", "1e9", "--rho2", "10"],
      /--b 1000000000 exceeds the cap/,
    ],
    [["simplex", "--K", "1e5", "--h", "1e5"], /simplex --K 100000 --h 100000: too large/],
    [
      ["sc-bound", "--N", "9007199254740993", "--K", "10", "--b", "256", "--rho2", "10"],
      /--N must be at most 2\^53/,
    ],
  ];
  for (const [args, pattern] of cases) {
    const r = theoryMain(args);
    assertEquals(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assertMatch(r.stderr, pattern);
    assertEquals(r.stderr.trim().split("\n").length <= 2, true);
  }
});

Deno.test({
  name: "resume: --data given with a trailing slash, then through a symlink, is the same data",
  ...gpuTest,
  async fn() {
    await setup();
    const tmp = await Deno.makeTempDir({ prefix: "nlw_data_" });
    const dir = join(tmp, "cifar");
    await Deno.mkdir(dir);
    const batch = (n: number, seed: number) => {
      const b = new Uint8Array(n * 3073);
      for (let i = 0; i < n; i++) {
        b[i * 3073] = i % 10;
        for (let j = 1; j < 3073; j++) b[i * 3073 + j] = (i * 31 + j * 7 + seed) & 255;
      }
      return b;
    };
    for (let k = 1; k <= 5; k++) await Deno.writeFile(join(dir, `data_batch_${k}.bin`), batch(10, k));
    await Deno.writeFile(join(dir, "test_batch.bin"), batch(10, 9));
    await Deno.symlink(dir, join(tmp, "link"));
    const out = join(tmp, "run");
    const args = [...tiny("--iterations=2"), "--dataset=cifar10", `--out=${out}`];
    const first = await run([...args, `--data=${dir}/`]);
    assertEquals(first.code, 0, first.stderr.join("\n"));
    const resumed = await run([
      ...args.filter((a) => !a.startsWith("--iterations")),
      "--iterations=3",
      `--data=${join(tmp, "link")}`,
      "--resume",
    ]);
    assertEquals(resumed.code, 0, resumed.stderr.join("\n"));
    assertEquals((await summary(out)).step, 3);
    await Deno.remove(tmp, { recursive: true });
  },
});

Deno.test({
  name: "disk full: a failed write names the file, and the CLI maps it to exit 7 in one line",
  ignore: Deno.build.os !== "linux", // /dev/full: every write fails with ENOSPC
  async fn() {
    // Deno lets only --allow-all touch /dev, so this runs in a subprocess.
    const url = (p: string) => JSON.stringify(new URL(p, import.meta.url).href);
    const code = `import { CsvLogger } from ${url("../train/csv.ts")};
      import { describeError } from ${url("../experiments/train.ts")};
      try { (await CsvLogger.open("/dev/full", { columns: ["step", "loss"] })).close(); console.log("{}"); }
      catch (e) { console.log(JSON.stringify(describeError(e))); }`;
    const out = await new Deno.Command(Deno.execPath(), { args: ["eval", "-A", code], stderr: "null" })
      .output();
    const d = JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)!);
    assertEquals(d.code, 7);
    assertMatch(d.message, /^cannot write \/dev\/full: No space left on device/);
  },
});
