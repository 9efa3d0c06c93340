import assert from "node:assert/strict";
import { main } from "../theory/cli.ts";

function ok(args: string[]): string {
  const r = main(args);
  assert.equal(r.code, 0, `args ${args.join(" ")}: code ${r.code}, stderr ${r.stderr}`);
  assert.equal(r.stderr, "");
  return r.stdout;
}

function usageError(args: string[], pattern: RegExp): void {
  const r = main(args);
  assert.equal(r.code, 2, `args ${args.join(" ")}: expected exit 2, got ${r.code} (stdout ${r.stdout})`);
  assert.equal(r.stdout, "");
  assert.match(r.stderr, pattern, `args ${args.join(" ")}: stderr ${r.stderr}`);
}

Deno.test("cli sc-bound: paper checks 824.487 and 12.12015 (text and JSON)", () => {
  const big = ok(["sc-bound", "--N", "50000", "--K", "10", "--b", "256", "--rho2", "10"]);
  assert.match(big, /mean per multiset.*824\.4873\d*/);
  assert.match(big, /i\.i\.d\./);
  assert.match(big, /e\+696/);
  const small = ok(["sc-bound", "--N", "12", "--K", "3", "--b", "9", "--rho2", "1"]);
  assert.match(small, /mean per multiset.*12\.120150\d*/);
  assert.match(small, /167960/);
  const j = JSON.parse(ok(["sc-bound", "--N", "12", "--K", "3", "--b", "9", "--rho", "1", "--json"]));
  assert.equal(j.numBatches, "167960");
  assert.equal(j.method, "exact");
  assert.equal(j.mean.toPrecision(7), "12.12015");
  const jb = JSON.parse(ok(["sc-bound", "--N=50000", "--K=10", "--b=256", "--rho2=10", "--json"]));
  assert.equal(jb.mean.toPrecision(6), "824.487");
  assert.equal(jb.numBatches, null);
  assert.ok(jb.iidExpectation > 824 && jb.iidExpectation < jb.mean);
  const je = JSON.parse(
    ok(["sc-bound", "--N=50000", "--K=10", "--b=256", "--rho2=10", "--method", "exact", "--json"]),
  );
  assert.match(je.numBatches, /^1931754/);
});

Deno.test("cli simplex, ce-bound, rw, gamma produce consistent output", () => {
  const s = ok(["simplex", "--K", "4", "--h", "3", "--radius", "2"]);
  assert.match(s, /zeta_4/);
  assert.match(s, /-1\.33333333333333/);
  const sj = JSON.parse(ok(["simplex", "--K", "3", "--h", "5", "--json"]));
  assert.equal(sj.vertices.length, 3);
  assert.equal(sj.vertices[0].length, 5);
  assert.ok(Math.abs(sj.invariants.maxInner + 0.5) < 1e-14);

  const c = JSON.parse(
    ok(["ce-bound", "--K", "10", "--rho2", "10", "--wd", "1e-4", "--frobW", "3", "--rW", "1", "--json"]),
  );
  assert.equal(c.corollary2.lambda, 5e-5);
  assert.ok(c.theorem1.bound > 0 && c.corollary1.bound > 0 && c.corollary2.bound > 0);
  const r = JSON.parse(ok(["rw", "--K", "10", "--rho2", "10", "--wd", "1e-4", "--json"]));
  assert.equal(r.rW, c.corollary2.rW);
  assert.match(ok(["rw", "--K", "10", "--rho", "1", "--lambda", "1e-12"]), /r_W\(K=10/);
  const g = JSON.parse(ok(["gamma", "--K", "10", "--json"]));
  assert.ok(Math.abs(g.gamma - (1 - Math.acos(-1 / 9) / Math.PI)) < 1e-15);
  assert.match(ok(["gamma", "--K", "3"]), /0\.33333333333333/);
  assert.match(ok(["--help"]), /Usage: deno task theory/);
  assert.match(ok(["sc-bound", "--help"]), /Usage/);
});

Deno.test("cli: invalid arguments exit 2 with a message naming the problem", () => {
  usageError(["simplex", "--K", "5", "--h", "3"], /K=5.*h=3/);
  usageError(
    ["sc-bound", "--N", "13", "--K", "3", "--b", "9", "--rho2", "1"],
    /N must be divisible by K.*N=13, K=3/,
  );
  usageError(["sc-bound", "--N", "12", "--K", "3", "--b", "1", "--rho2", "1"], /--b must be an integer >= 2/);
  usageError(["sc-bound", "--N", "12", "--K", "3", "--b", "9"], /--rho/);
  usageError(["sc-bound", "--N", "12", "--b", "9", "--rho2", "1"], /missing required flag --K/);
  usageError(
    ["sc-bound", "--N", "12", "--K", "3", "--b", "9", "--rho2", "1", "--method", "fast"],
    /--method/,
  );
  usageError(["sc-bound", "--N", "1.5", "--K", "3", "--b", "9", "--rho2", "1"], /--N must be an integer/);
  usageError(["rw", "--K", "3", "--rho", "1", "--lambda", "0"], /--lambda must be > 0/);
  usageError(["rw", "--K", "3", "--rho", "1", "--lambda", "-1"], /--lambda must be > 0/);
  usageError(["rw", "--K", "3", "--rho", "1", "--wd", "-1e-4"], /--wd must be > 0/);
  usageError(["rw", "--K", "3", "--rho", "1"], /--lambda/);
  usageError(["rw", "--K", "3", "--rho", "1", "--lambda", "1", "--wd", "1"], /only one of --lambda and --wd/);
  usageError(["rw", "--K", "3", "--rho", "abc", "--lambda", "1"], /--rho must be a finite number/);
  usageError(["ce-bound", "--K", "3", "--rho", "1"], /at least one of/);
  usageError(
    ["ce-bound", "--K", "3", "--rho", "1", "--rho2", "1", "--rW", "1"],
    /only one of --rho and --rho2/,
  );
  usageError(["gamma", "--K", "1"], /--K must be an integer >= 2/);
  usageError(["gamma"], /missing required flag --K/);
  usageError(["frobnicate"], /unknown command 'frobnicate'/);
  usageError([], /missing command/);
  usageError(["gamma", "--K", "3", "--bogus", "1"], /bogus/);
  usageError(["gamma", "--K", "3", "--N", "12"], /--N does not apply to 'gamma'/);
  usageError(["gamma", "extra", "--K", "3"], /unexpected argument 'extra'/);
});

const canRun = Deno.permissions.querySync({ name: "run" }).state === "granted" &&
  Deno.permissions.querySync({ name: "read" }).state === "granted";

Deno.test({
  name: "cli subprocess: runs with no permissions; bad arguments exit 2",
  ignore: !canRun,
  async fn() {
    const cli = new URL("../theory/cli.ts", import.meta.url).pathname;
    const run = async (args: string[]) => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "--no-prompt", cli, ...args],
        stdout: "piped",
        stderr: "piped",
      }).output();
      return {
        code: out.code,
        stdout: new TextDecoder().decode(out.stdout),
        stderr: new TextDecoder().decode(out.stderr),
      };
    };
    const good = await run(["sc-bound", "--N", "12", "--K", "3", "--b", "9", "--rho2", "1"]);
    assert.equal(good.code, 0, good.stderr);
    assert.match(good.stdout, /12\.12015/);
    const bad = await run(["simplex", "--K", "5", "--h", "3"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /K=5.*h=3/);
  },
});
