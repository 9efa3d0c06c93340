/**
 * The H200 run's scripts (bench/device/): the adapter verdict of probe.ts, the shell syntax of
 * prepare.sh and h200.sh, and their dry rehearsal end to end: a copy of the working tree as the device
 * tool would send it, `prepare.sh --fast` staging `.bench-device/` there, then `h200.sh --dry` (tiny
 * cases on whatever adapter this machine has), and the files it writes checked one by one. About a
 * minute and a half on two cores (most of it the ResNet-18 step's pipeline compilation on llvmpipe).
 */
import assert from "node:assert/strict";
import { notHardwareReason } from "../bench/device/probe.ts";
import type { AdapterReport } from "../engine/device.ts";

const ROOT = new URL("..", import.meta.url).pathname;

function report(name: string, extra: Partial<AdapterReport> = {}): AdapterReport {
  return { name, vendor: "4318", architecture: "", isFallback: false, limits: {}, features: [], ...extra };
}

Deno.test("probe.ts: only a hardware adapter over Vulkan is accepted", () => {
  assert.equal(notHardwareReason(report("NVIDIA H200"), "vulkan"), null);
  assert.equal(notHardwareReason(report("NVIDIA H200"), null), null); // backend not readable: not checked
  const rejected: [AdapterReport, string | null, RegExp][] = [
    [report("llvmpipe (LLVM 15.0.6, 256 bits)", { isFallback: true, vendor: "65541" }), "vulkan", /fallback/],
    [report("llvmpipe (LLVM 15.0.6, 256 bits)"), "vulkan", /software renderer/],
    [report("Some Mesa device", { vendor: "65541" }), "vulkan", /vendor id/],
    [report("NVIDIA H200/PCIe/SSE2"), "vulkan", /OpenGL/],
    [report("ANGLE (NVIDIA, Vulkan 1.3)"), "vulkan", /OpenGL/],
    [report("NVIDIA H200"), "gl", /not "vulkan"/],
    [report("NVIDIA H200"), "", /not "vulkan"/],
  ];
  for (const [r, backend, why] of rejected) {
    const reason = notHardwareReason(r, backend);
    assert(reason !== null, `${r.name} over ${backend} accepted`);
    assert.match(reason, why);
  }
});

async function sh(
  args: string[],
  opts: { cwd?: string; env?: Record<string, string>; timeoutMs?: number } = {},
): Promise<{ code: number; out: string }> {
  const out = await new Deno.Command(args[0], {
    args: args.slice(1),
    cwd: opts.cwd ?? ROOT,
    env: opts.env,
    stdout: "piped",
    stderr: "piped",
    signal: opts.timeoutMs ? AbortSignal.timeout(opts.timeoutMs) : undefined,
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, out: dec.decode(out.stdout) + dec.decode(out.stderr) };
}

const hasBash = await sh(["bash", "-c", "command -v xz python3 tar git >/dev/null"]).then(
  (r) => r.code === 0,
  () => false,
);

Deno.test({
  name: "bench/device/*.sh: bash -n (and shellcheck where installed) are clean",
  ignore: !hasBash,
  async fn() {
    const scripts = ["bench/device/prepare.sh", "bench/device/h200.sh"];
    for (const s of scripts) {
      const r = await sh(["bash", "-n", s]);
      assert.equal(r.code, 0, `bash -n ${s}: ${r.out}`);
    }
    const hasShellcheck = (await sh(["bash", "-c", "command -v shellcheck"])).code === 0;
    if (hasShellcheck) {
      const r = await sh(["shellcheck", ...scripts]);
      assert.equal(r.code, 0, `shellcheck: ${r.out}`);
    }
  },
});

/** Copies the files the device tool would send (tracked, and untracked but not ignored) to `dst`. */
async function copyWorkingTree(dst: string): Promise<number> {
  const ls = await sh(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"]);
  assert.equal(ls.code, 0, ls.out);
  let n = 0;
  for (const rel of ls.out.split("\0").filter((s) => s)) {
    let info: Deno.FileInfo;
    try {
      info = await Deno.lstat(ROOT + rel);
    } catch {
      continue; // deleted in the working tree, not yet in the index
    }
    if (!info.isFile) continue;
    const target = `${dst}/${rel}`;
    await Deno.mkdir(target.slice(0, target.lastIndexOf("/")), { recursive: true });
    await Deno.copyFile(ROOT + rel, target);
    n++;
  }
  return n;
}

async function listFiles(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) names.push(e.isFile ? e.name : `${e.name}/`);
  return names.sort();
}

interface BenchDoc {
  partial: boolean;
  adapter: { name: string; isFallback: boolean };
  tfjs: string;
  results: {
    id: string;
    results: Record<string, { median: number; samples: number[] } | null>;
    notes: Record<string, string>;
  }[];
}

Deno.test({
  name: "bench/device: prepare.sh --fast, then h200.sh --dry, from a copy of the working tree",
  ignore: !hasBash,
  async fn() {
    const tmp = await Deno.makeTempDir({ prefix: "device-script-test-" });
    try {
      const repo = `${tmp}/repo`;
      const files = await copyWorkingTree(repo);
      assert(files > 50, `only ${files} files copied`);
      assert.equal((await sh(["git", "init", "-q"], { cwd: repo })).code, 0);
      const before = (await sh(["git", "ls-files", "--others", "--exclude-standard"], { cwd: repo })).out;

      // 1. Stage, with this process's deno (2.9.6, as the task runner gives it).
      const env = { DENO: Deno.execPath() };
      let prep = await sh(["bash", "bench/device/prepare.sh", "--fast"], {
        cwd: repo,
        env,
        timeoutMs: 300_000,
      });
      if (prep.code !== 0 && /apt-get could not download/.test(prep.out)) {
        console.warn("no Debian mirror reachable: staging without the Vulkan loader .debs");
        prep = await sh(["bash", "bench/device/prepare.sh", "--fast", "--no-deb"], {
          cwd: repo,
          env,
          timeoutMs: 300_000,
        });
      }
      assert.equal(prep.code, 0, `prepare.sh failed:\n${prep.out}`);
      const size = prep.out.match(/together ([\d.]+) MiB of 64 MiB/);
      assert(size, `prepare.sh printed no size line:\n${prep.out}`);
      assert(Number(size[1]) < 62, `carry + tree ${size[1]} MiB: over the device call's 64 MiB less 2 spare`);
      const staged = await listFiles(`${repo}/.bench-device`);
      for (const f of ["MANIFEST.txt", "deno.xz", "npm.tar.xz"]) {
        assert(staged.includes(f), `no ${f}: ${staged}`);
      }
      assert.match(await Deno.readTextFile(`${repo}/.bench-device/MANIFEST.txt`), /deno 2\.9\.6/);
      const npmPackages = prep.out.match(/npm: (\d+) packages in deno.lock, (\d+) of them for TF.js/);
      assert(npmPackages && Number(npmPackages[2]) > 10, `TF.js closure not staged:\n${prep.out}`);

      // 2. Rehearse the device call.
      const out = `${tmp}/out`;
      const t0 = performance.now();
      const run = await sh(["bash", "bench/device/h200.sh", "--dry"], {
        cwd: repo,
        env: { OUT: out },
        timeoutMs: 420_000,
      });
      const secs = (performance.now() - t0) / 1000;
      assert.equal(run.code, 0, `h200.sh --dry exited ${run.code}:\n${run.out.slice(-6000)}`);
      console.log(`h200.sh --dry: ${secs.toFixed(0)} s; its steps:`);
      console.log(run.out.split("\n").filter((l) => l.startsWith("== [")).join("\n"));

      // 3. Its files: the 8 the device tool brings back, each well-formed.
      const expected = [
        "adapter.json",
        "bench-kernels.json",
        "bench-kernels.md",
        "bench-resnet.json",
        "bench-resnet.md",
        "env.txt",
        "log.txt",
        "torch_cuda.jsonl",
      ];
      assert.deepEqual(await listFiles(out), expected);
      for (const f of expected) {
        const { size } = await Deno.stat(`${out}/${f}`);
        assert(size > 0 && size <= 16 * 1024 * 1024, `${f}: ${size} bytes`);
      }
      const adapter = JSON.parse(await Deno.readTextFile(`${out}/adapter.json`));
      assert.equal(adapter.ok, true);
      assert(["vulkan", "gl"].includes(adapter.backend), `backend ${adapter.backend}`);
      assert.equal(typeof adapter.verdict, "string");

      const torchLines = (await Deno.readTextFile(`${out}/torch_cuda.jsonl`)).split("\n").filter((l) => l);
      const torch = torchLines.map((l) => JSON.parse(l) as { id: string; median?: number; error?: string });
      assert.equal(torch[0].id, "info");
      for (const t of torch.slice(1)) {
        assert(
          t.id === "mode-info" || t.median !== undefined,
          `torch line without a time: ${JSON.stringify(t)}`,
        );
      }

      const phases: [string, string[]][] = [
        ["resnet", ["resnet18-step-b1"]],
        ["kernels", ["matmul-1024", "gram-256", "gram-1024"]],
      ];
      for (const [phase, ids] of phases) {
        const doc = JSON.parse(await Deno.readTextFile(`${out}/bench-${phase}.json`)) as BenchDoc;
        assert.equal(doc.partial, false, `bench-${phase}.json is partial`);
        assert.equal(doc.adapter.name, adapter.name, "the bench ran on another adapter than the probe found");
        assert.deepEqual(doc.results.map((r) => r.id), ids);
        for (const r of doc.results) {
          const ours = r.results.ours;
          assert(
            ours && Number.isFinite(ours.median) && ours.median > 0,
            `${r.id}: ours ${JSON.stringify(ours)}`,
          );
        }
        if (phase === "kernels") {
          // TF.js loaded from the pruned npm cache that prepare.sh staged, offline (--cached-only).
          assert.match(doc.tfjs, /^tfjs-core 4\.22\.0, backend webgpu/);
          for (const r of doc.results) {
            assert(r.results.tfjs?.median, `${r.id}: no TF.js time (${r.notes.tfjs})`);
          }
        }
        const md = await Deno.readTextFile(`${out}/bench-${phase}.md`);
        assert.match(md, /^\| case \| ours ms \|/m);
        assert.match(md, /^Our engine: adapter /m);
        if (phase === "resnet" && torch.some((t) => t.id === "resnet18-step-b1" && t.median !== undefined)) {
          // PyTorch ran (on the CPU here): its columns and the target line are in the table.
          assert.match(md, /PyTorch CUDA fp32 ms/);
          assert.match(md, /ours runs at \*\*\d+%\*\* of PyTorch fp32's speed/);
        }
      }
      const env_ = await Deno.readTextFile(`${out}/env.txt`);
      for (const section of ["## uname", "## deno", "## webgpu backend", "## vulkan loader (carried)"]) {
        assert(env_.includes(section), `env.txt lacks ${section}`);
      }
      const log = await Deno.readTextFile(`${out}/log.txt`);
      for (
        const step of [
          "unpacked: deno 2.9.6",
          "bench resnet exit 0",
          "bench kernels exit 0",
          "done, status 0",
        ]
      ) {
        assert(log.includes(step), `log.txt lacks "${step}"`);
      }

      // 4. Nothing was left in the tree that would travel with the next device call.
      const after = (await sh(["git", "ls-files", "--others", "--exclude-standard"], { cwd: repo })).out;
      assert.equal(after, before, "prepare.sh or h200.sh wrote files into the working tree");
    } finally {
      await Deno.remove(tmp, { recursive: true });
    }
  },
});
