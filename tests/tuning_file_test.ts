/**
 * The autotuner's cache file under Deno (`engine/tune/store.ts`): written atomically where the permissions
 * grant it, reused by a later process, replaced with a warning when corrupt, and kept in memory (with a note
 * saying why) where `--allow-write` does not grant its folder.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { gpuTest, setup } from "./util.ts";
import { defaultStore } from "../engine/tune/store.ts";
import { tensor } from "../engine/tensor.ts";
import { matmul } from "../engine/ops/matmul.ts";
import { memoryStore } from "../engine/tune/store.ts";

const deno = Deno.execPath();

/** Runs a small matmul in a new process with `tuning` and the cache at `path`; returns its decisions. */
async function child(tuning: string, path: string) {
  const script = `
import { initDevice } from "${new URL("../engine/gpu.ts", import.meta.url)}";
import "${new URL("../engine/autograd.ts", import.meta.url)}";
import { tensor } from "${new URL("../engine/tensor.ts", import.meta.url)}";
import { matmul } from "${new URL("../engine/ops/matmul.ts", import.meta.url)}";
const g = await initDevice();
const a = tensor(new Float32Array(40 * 70).fill(0.5), [40, 70]);
const c = matmul(a, a, { transB: true });
const pending = g.tuner.pendingCount;
await g.tuner.measurePending();
await c.toArray();
console.log(JSON.stringify({ pending, decisions: g.tuner.decisions().map((d) => d.source), warning: g.tuner.warning }));`;
  const out = await new Deno.Command(deno, {
    args: ["eval", "--quiet", script],
    env: { SUPCON_TUNING: tuning, SUPCON_TUNING_CACHE: path },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  return JSON.parse(text.split("\n").at(-1)!);
}

Deno.test({
  ...gpuTest,
  name: "tuning file: written by a measuring process, reused by the next without measuring",
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const path = join(dir, "nested", "tuning.json");
      const first = await child("measure", path);
      assert.equal(first.pending, 1);
      assert.deepEqual(first.decisions, ["measured"]);
      const file = JSON.parse(await Deno.readTextFile(path));
      assert.equal(
        Object.keys(Object.values(file.adapters as Record<string, { entries: object }>)[0].entries).length,
        1,
      );
      assert.deepEqual(
        [...Deno.readDirSync(join(dir, "nested"))].map((e) => e.name),
        ["tuning.json"],
        "no temp files",
      );
      const second = await child("cached", path);
      assert.equal(second.pending, 0);
      assert.deepEqual(second.decisions, ["cached"]);
      const off = await child("off", path);
      assert.deepEqual(off.decisions, [], "mode off ignores the cache");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  ...gpuTest,
  name:
    "tuning file: a corrupt file is replaced with a warning; an unwritable folder is read-only, an unreadable one kept in memory",
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const path = join(dir, "tuning.json");
      await Deno.writeTextFile(path, '{"format": "supcon-webgpu/tuning/1", "adapters": [trunc');
      const run = await child("measure", path);
      assert.match(run.warning ?? "", /corrupt/);
      assert.deepEqual(run.decisions, ["measured"]);
      assert.equal(JSON.parse(await Deno.readTextFile(path)).format, "supcon-webgpu/tuning/1");
      // No write permission for the folder: a memory store that says why.
      const out = await new Deno.Command(deno, {
        args: [
          "eval",
          "--quiet",
          `import { defaultStore } from "${new URL("../engine/tune/store.ts", import.meta.url)}";
const s = defaultStore(${JSON.stringify(join(dir, "x", "t.json"))}); console.log(s.location + "|" + s.note);`,
        ],
        stdout: "piped",
      }).output();
      // deno eval grants everything; the store code's permission query is exercised with a narrower run:
      assert.match(new TextDecoder().decode(out.stdout), /t\.json\|null/);
      const narrow = await new Deno.Command(deno, {
        args: [
          "run",
          "--allow-read",
          "--allow-env",
          new URL("./tuning_store_probe.ts", import.meta.url).pathname,
          join(dir, "y", "t.json"),
        ],
        stdout: "piped",
      }).output();
      assert.match(
        new TextDecoder().decode(narrow.stdout),
        /t\.json\|read-only: --allow-write does not grant /,
      );
      const none = await new Deno.Command(deno, {
        args: [
          "run",
          "--allow-env",
          new URL("./tuning_store_probe.ts", import.meta.url).pathname,
          join(dir, "z.json"),
        ],
        stdout: "piped",
      }).output();
      assert.match(new TextDecoder().decode(none.stdout), /^memory\|--allow-read does not grant /);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  ...gpuTest,
  name: "tuning file: defaultStore writes atomically and the engine's tuner can use it in-process",
  async fn() {
    const g = await setup();
    const dir = await Deno.makeTempDir();
    try {
      const store = defaultStore(join(dir, "t.json"));
      assert.equal(store.note, null);
      await g.tuner.open("measure", store);
      const a = tensor(new Float32Array(33 * 17).fill(1), [33, 17]);
      const c = matmul(a, a, { transA: true });
      await g.tuner.measurePending();
      assert.ok((await store.load())!.includes('"winner"'));
      [a, c].forEach((t) => t.dispose());
    } finally {
      await g.tuner.open("off", memoryStore());
      await Deno.remove(dir, { recursive: true });
    }
  },
});
