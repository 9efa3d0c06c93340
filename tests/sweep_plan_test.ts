/**
 * `deno task sweep` without training: the grids' sizes, stable cell ids, grid-file checks, planning
 * again, the batch script's directives, one-line errors and failed.json of a cell that cannot run.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { buildPlan, makePlan } from "../sweep/make_plan.ts";
import { builtinGrid, expandGrid, GridError } from "../sweep/grids.ts";
import { cellId, cellState, PlanError, readPlan } from "../sweep/plan.ts";
import { arraySpec, sbatchScript } from "../sweep/slurm.ts";
import { defaultTrainConfig } from "../experiments/section5/config.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const TASK = JSON.parse(Deno.readTextFileSync(join(ROOT, "deno.json"))).tasks.sweep as string;
const FLAGS = TASK.split(/\s+/).slice(2, -1);

async function sweep(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...FLAGS, join(ROOT, "sweep", "main.ts"), ...args],
    env: { SUPCON_TUNING: "off" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: r.code, out: dec.decode(r.stdout), err: dec.decode(r.stderr) };
}

Deno.test("sweep grids: Section 5 is 3 losses × 2 datasets × aug on/off plus a pre-activation column; random labels 3 × 11 × 2", async () => {
  const s5 = await buildPlan({ grid: "section5", out: "x", scale: "paper" });
  assert.equal(s5.cells.length, 18);
  assert.equal(s5.cells.filter((c) => c.labels.preact).length, 6);
  assert.ok(s5.cells.filter((c) => c.labels.preact).every((c) => c.labels.augment));
  assert.deepEqual(new Set(s5.cells.map((c) => c.labels.dataset)), new Set(["cifar10", "cifar100"]));
  assert.ok(
    s5.cells.every((c, i) => c.index === i && c.dir === `cells/${c.id}` && /^[0-9a-f]{12}$/.test(c.id)),
  );
  const p = s5.cells[0].config;
  assert.equal(p.iterations, 100000);
  assert.equal(p.batch, 256);
  assert.equal(p.width, 1);
  const rl = await buildPlan({ grid: "random-labels", out: "x", scale: "paper", seeds: [0, 1] });
  assert.equal(rl.cells.length, 3 * 11 * 2 * 2);
  assert.ok(
    rl.cells.every((c) => c.kind === "random-labels" && !c.config.augment && c.config.evalEvery === 500),
  );
  assert.deepEqual([...new Set(rl.cells.map((c) => c.labels.fraction))].length, 11);
  const tiny = await buildPlan({ grid: "section5", out: "x", scale: "tiny" });
  assert.ok(tiny.cells.every((c) => c.config.dataset === "synthetic" && c.config.width === 0.0625));
  assert.ok(tiny.cells.every((c) => c.config.iterations <= 50));
  assert.equal(s5.versions.deno, Deno.version.deno);
});

Deno.test("sweep ids: a hash of the configuration, not of where it runs", () => {
  const cfg = { ...defaultTrainConfig, out: "a", quiet: true };
  assert.equal(cellId("section5", cfg), cellId("section5", { ...cfg, out: "b", quiet: false }));
  assert.notEqual(cellId("section5", cfg), cellId("section5", { ...cfg, seed: 1 }));
  assert.notEqual(cellId("section5", cfg), cellId("random-labels", cfg));
  const a = expandGrid(builtinGrid("section5", "tiny", [0]), "tiny", "g");
  const b = expandGrid(builtinGrid("section5", "tiny", [0]), "tiny", "g");
  assert.deepEqual(a.map((c) => c.id), b.map((c) => c.id));
});

Deno.test("sweep grid files: unknown keys, settings a random-labels run ignores, and duplicate cells are refused", () => {
  assert.throws(
    () => expandGrid({ kind: "section5", axes: { lossx: ["ce"] } as never }, "tiny", "g.json"),
    (e: Error) => e instanceof GridError && /g\.json axes: unknown setting "lossx"/.test(e.message),
  );
  assert.throws(
    () => expandGrid({ kind: "random-labels", base: { momentum: 0.5 } }, "tiny", "g.json"),
    (e: Error) =>
      e instanceof GridError && /"momentum" 0\.5 cannot be set in a random-labels grid/.test(e.message),
  );
  assert.throws(
    () => expandGrid({ kind: "section5", axes: { loss: ["ce", "ce"] } }, "tiny", "g.json"),
    (e: Error) => e instanceof GridError && /cell 1 .*the same configuration as cell 0/.test(e.message),
  );
  assert.throws(
    () => expandGrid({ kind: "section5", axes: { width: [-1] } }, "tiny", "g.json"),
    (e: Error) => e instanceof GridError && /g\.json cell 0 .*width -1 is below/.test(e.message),
  );
});

Deno.test("sweep plan: planning again changes nothing, a different grid in the same folder is refused", async () => {
  const dir = await Deno.makeTempDir({ prefix: "supcon-sweep-plan-" });
  try {
    const first = await makePlan({ grid: "section5", out: dir, scale: "tiny" });
    assert.equal(first.existed, false);
    for (const c of first.plan.cells) {
      assert.deepEqual(JSON.parse(await Deno.readTextFile(join(dir, c.dir, "cell.json"))), c);
      assert.equal(cellState(dir, c), "pending");
    }
    const again = await makePlan({ grid: "section5", out: dir, scale: "tiny" });
    assert.equal(again.existed, true);
    assert.equal(again.plan.createdAt, first.plan.createdAt);
    await assert.rejects(
      () => makePlan({ grid: "random-labels", out: dir, scale: "tiny" }),
      (e: Error) => e instanceof PlanError && /already holds a different plan/.test(e.message),
    );
    assert.equal((await readPlan(dir)).cells.length, 9);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("sweep slurm: the batch script's array, logs, early warning, requeue and resource directives", () => {
  assert.equal(arraySpec([0, 1, 2, 5, 7, 8]), "0-2,5,7-8");
  assert.equal(arraySpec([3], 4), "3%4");
  const s = sbatchScript("/sweeps/s5", [1, 2, 4], {
    partition: "gpu",
    gpusPerCell: 1,
    time: "24:00:00",
    account: "lab",
    maxParallel: 8,
    warnSeconds: 600,
    sbatchArgs: ["--mem=16G"],
    deno: "/opt/deno",
  });
  for (
    const d of [
      "--array=1-2,4%8",
      "--output=/sweeps/s5/logs/%A_%a.out",
      "--signal=B:USR1@600",
      "--requeue",
      "--partition=gpu",
      "--gres=gpu:1",
      "--time=24:00:00",
      "--account=lab",
      "--mem=16G",
    ]
  ) assert.ok(s.includes(`\n#SBATCH ${d}\n`), d);
  assert.match(s, /\/opt\/deno run .* \/sweeps\/s5 "\$cell" &/);
  assert.match(s, /scontrol requeue "\$task"/);
  assert.match(s, /task="\$\{SLURM_ARRAY_JOB_ID\}_\$\{cell\}"/);
});

Deno.test({
  name: "sweep CLI: one-line errors naming the file or cell; a cell that cannot run writes failed.json",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "supcon-sweep-cli-" });
    try {
      const missing = await sweep(["status", join(dir, "none")]);
      assert.equal(missing.code, 2);
      assert.match(missing.err, /^error: .*none\/plan\.json: not found/);
      assert.equal(missing.err.trim().split("\n").length, 1);
      const grid = join(dir, "grid.json");
      await Deno.writeTextFile(
        grid,
        JSON.stringify({
          kind: "section5",
          scale: "tiny",
          base: { dataset: "cifar10", data: join(dir, "no-data") },
        }),
      );
      const out = join(dir, "s");
      const planned = await sweep(["plan", "--grid", grid, "--out", out]);
      assert.equal(planned.code, 0, planned.err);
      const bad = await sweep(["run-cell", out, "3"]);
      assert.equal(bad.code, 2);
      assert.match(bad.err, /plan\.json has 1 cells \(0–0\); no cell 3/);
      const r = await sweep(["run-cell", out, "0"]);
      assert.equal(r.code, 4, r.err); // deno task train's code for data that cannot be read
      const plan = await readPlan(out);
      const failed = JSON.parse(await Deno.readTextFile(join(out, plan.cells[0].dir, "failed.json")));
      assert.equal(failed.exitCode, 4);
      assert.equal(failed.index, 0);
      assert.equal(failed.id, plan.cells[0].id);
      assert.match(failed.error, /no-data/);
      const status = await sweep(["status", out, "--json"]);
      assert.equal(JSON.parse(status.out)[0].state, "failed");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
