// Tests for experiments/lib: atomic writes, CSV, safetensors, plotting, CLI, progress, summary.
// Run: deno test --allow-read --allow-write --allow-env tests/experiments_lib_test.ts

import assert from "node:assert/strict";
import { join } from "node:path";
import { writeFileAtomic, writeFileAtomicSync, writeJsonAtomic } from "../train/atomic.ts";
import { CsvLogger, parseCsv, readCsv, toCsv, writeCsv } from "../train/csv.ts";
import {
  decodeSafetensors,
  encodeSafetensors,
  loadSafetensors,
  SafetensorsError,
  saveSafetensors,
} from "../train/safetensors.ts";
import {
  binValues,
  getPlotFonts,
  hconcat,
  histogram,
  lineChart,
  renderVegaLite,
  saveFigure,
  scatterChart,
  svgToPng,
} from "../experiments/lib/plot.ts";
import {
  CliError,
  CliHelp,
  defaultConfig,
  parseExperimentArgsOrThrow,
  runDir,
  saveConfig,
  timestamp,
  usage,
} from "../experiments/lib/cli.ts";
import { formatDuration, Progress } from "../experiments/lib/progress.ts";
import { printJsonLine, writeSummary } from "../experiments/lib/summary.ts";

async function listDir(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  return names.sort();
}

// ------------------------------------------------------------------------------------------------ atomic

Deno.test("atomic: writes content, replaces existing file, leaves no tmp files", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const p = join(dir, "a.txt");
    await writeFileAtomic(p, "first");
    await writeFileAtomic(p, "second ✓");
    assert.equal(await Deno.readTextFile(p), "second ✓");
    writeFileAtomicSync(join(dir, "b.bin"), new Uint8Array([1, 2, 3]));
    assert.deepEqual([...await Deno.readFile(join(dir, "b.bin"))], [1, 2, 3]);
    await writeJsonAtomic(join(dir, "c.json"), { x: new Float32Array([0.5, 1]), n: NaN, b: 3n });
    assert.deepEqual(JSON.parse(await Deno.readTextFile(join(dir, "c.json"))), {
      x: [0.5, 1],
      n: null,
      b: 3,
    });
    assert.deepEqual(await listDir(dir), ["a.txt", "b.bin", "c.json"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("atomic: failure leaves target untouched and no tmp file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const target = join(dir, "sub"); // a directory: rename of a file onto it fails
    await Deno.mkdir(target);
    await Deno.writeTextFile(join(target, "keep"), "x");
    await assert.rejects(writeFileAtomic(target, "data"));
    assert.deepEqual(await listDir(dir), ["sub"]);
    await assert.rejects(writeFileAtomic(join(dir, "missing", "f.txt"), "data"), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// ------------------------------------------------------------------------------------------------ csv

Deno.test("csv: toCsv/parseCsv round trip with quoting, numbers and empty cells", async () => {
  const rows = [
    { step: 1, loss: 0.123456789012345, name: 'a,b "q"', ok: true },
    { step: 2, loss: NaN, name: "line\nbreak", extra: null },
    { step: 3, loss: -Infinity, name: "", ok: false },
  ];
  const text = toCsv(rows);
  assert.equal(text.split("\n")[0], "step,loss,name,ok,extra");
  const back = parseCsv(text, { numbers: true });
  assert.equal(back.length, 3);
  assert.equal(back[0].loss, 0.123456789012345);
  assert.equal(back[0].name, 'a,b "q"');
  assert.equal(back[0].ok, "true");
  assert.ok(Number.isNaN(back[1].loss as number));
  assert.equal(back[1].name, "line\nbreak");
  assert.equal(back[1].extra, "");
  assert.equal(back[2].loss, -Infinity);
  assert.equal(parseCsv(text)[0].step, "1");
  assert.equal(toCsv([{ a: 1, b: 2 }], ["b", "a"]), "b,a\n2,1\n");

  const dir = await Deno.makeTempDir();
  try {
    await writeCsv(join(dir, "t.csv"), rows);
    assert.deepEqual(await readCsv(join(dir, "t.csv")), parseCsv(text));
    assert.deepEqual(await listDir(dir), ["t.csv"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("csv: CsvLogger appends, overwrites on fresh open, truncates on resume", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const p = join(dir, "train.csv");
    const log = await CsvLogger.open(p);
    for (let step = 0; step < 10; step++) log.log({ step, loss: 1 / (step + 1) });
    // every row is on disk before close
    assert.equal((await readCsv(p)).length, 10);
    assert.throws(() => log.log({ step: 10, bogus: 1 }), /column "bogus"/);
    log.close();
    assert.equal(log.lastStep, 9);

    // simulate a crash mid-line
    await Deno.writeTextFile(p, "10,0.0", { append: true });
    const r = await CsvLogger.open(p, { resumeAfterStep: 4 });
    assert.deepEqual(r.columns, ["step", "loss"]);
    assert.equal(r.rowCount, 5);
    assert.equal(r.lastStep, 4);
    r.log({ step: 5, loss: 0.5 });
    r.log({ loss: 0.25, step: 6 });
    r.close();
    const rows = await readCsv(p, { numbers: true });
    assert.deepEqual(rows.map((x) => x.step), [0, 1, 2, 3, 4, 5, 6]);
    assert.equal(rows[6].loss, 0.25);
    assert.equal((await Deno.readTextFile(p)).split("\n")[0], "step,loss");

    // resume keeping everything; explicit columns must match the header
    const all = await CsvLogger.open(p, { resumeAfterStep: Infinity });
    assert.equal(all.rowCount, 7);
    all.close();
    await assert.rejects(CsvLogger.open(p, { resumeAfterStep: 3, columns: ["loss", "step"] }), /differs/);
    await assert.rejects(CsvLogger.open(p, { resumeAfterStep: 3, stepColumn: "epoch" }), /no "epoch" column/);

    // resume on a missing file behaves like a fresh log
    const fresh = await CsvLogger.open(join(dir, "new.csv"), {
      resumeAfterStep: 3,
      columns: ["step", "acc"],
    });
    assert.equal(fresh.rowCount, 0);
    fresh.log({ step: 0, acc: 0.1 });
    fresh.close();
    assert.equal(await Deno.readTextFile(join(dir, "new.csv")), "step,acc\n0,0.1\n");

    // fresh open (no resume) overwrites
    const over = await CsvLogger.open(p, { columns: ["step", "loss"] });
    over.close();
    assert.equal(await Deno.readTextFile(p), "step,loss\n");
    assert.deepEqual(await listDir(dir), ["new.csv", "train.csv"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// ------------------------------------------------------------------------------------------------ safetensors

Deno.test("safetensors: round trip with metadata and layout details", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const p = join(dir, "w.safetensors");
    const w = new Float32Array([1.5, -2, 3.25, 0, 1e-8, -0]);
    const tensors = {
      "encoder.weight": { dtype: "F32" as const, shape: [2, 3], data: w },
      "labels": { dtype: "I32" as const, shape: [4], data: new Int32Array([0, -1, 7, 2 ** 31 - 1]) },
      "step": { dtype: "U32" as const, shape: [], data: new Uint32Array([4294967295]) },
      "empty": { dtype: "F32" as const, shape: [0, 5], data: new Float32Array(0) },
      "b": { dtype: "U8" as const, shape: [3], data: new Uint8Array([1, 2, 3]) },
    };
    await saveSafetensors(p, tensors, { format: "pt", seed: "7" });
    const bytes = await Deno.readFile(p);
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    assert.equal(n % 8, 0);
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
    assert.deepEqual(header.__metadata__, { format: "pt", seed: "7" });
    assert.deepEqual(header["encoder.weight"], { dtype: "F32", shape: [2, 3], data_offsets: [3, 27] });
    const back = await loadSafetensors(p);
    assert.deepEqual(back.metadata, { format: "pt", seed: "7" });
    assert.deepEqual(Object.keys(back.tensors).sort(), Object.keys(tensors).sort());
    for (const [k, t] of Object.entries(tensors)) {
      assert.equal(back.tensors[k].dtype, t.dtype);
      assert.deepEqual(back.tensors[k].shape, t.shape);
      assert.equal(back.tensors[k].data.constructor, t.data.constructor);
      assert.deepEqual(Array.from(back.tensors[k].data as ArrayLike<number>), [...t.data]);
    }
    assert.ok(Object.is(back.tensors["encoder.weight"].data[5], -0));
    assert.deepEqual(await listDir(dir), ["w.safetensors"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("safetensors: encode rejects inconsistent tensors", () => {
  assert.throws(
    () => encodeSafetensors({ a: { dtype: "F32", shape: [2, 2], data: new Float32Array(3) } }),
    /4 elements, data has 3/,
  );
  assert.throws(
    () => encodeSafetensors({ a: { dtype: "F32", shape: [2], data: new Int32Array(2) } }),
    /needs Float32Array/,
  );
});

Deno.test("safetensors: corrupt files give errors naming file and byte", async () => {
  const good = encodeSafetensors({
    a: { dtype: "F32", shape: [4], data: new Float32Array([1, 2, 3, 4]) },
    b: { dtype: "I32", shape: [2], data: new Int32Array([5, 6]) },
  });
  const n = Number(new DataView(good.buffer).getBigUint64(0, true));
  const dir = await Deno.makeTempDir();
  const write = async (name: string, bytes: Uint8Array) => {
    const p = join(dir, name);
    await Deno.writeFile(p, bytes);
    return p;
  };
  const expectError = async (p: string, re: RegExp, byte?: number) => {
    const err = await loadSafetensors(p).then(() => undefined, (e) => e);
    assert.ok(err instanceof SafetensorsError, `expected SafetensorsError for ${p}, got ${err}`);
    assert.match(err.message, re);
    assert.ok(err.message.includes(p), `message names the file: ${err.message}`);
    if (byte !== undefined) {
      assert.equal(err.byte, byte);
      assert.ok(err.message.includes(`byte ${byte}`), err.message);
    }
  };
  try {
    // truncated data section
    await expectError(await write("trunc.st", good.subarray(0, good.length - 3)), /out of range.*truncated/s);
    // truncated inside the header
    await expectError(await write("trunc_header.st", good.subarray(0, 20)), /runs past end of file/, 0);
    // shorter than the length prefix
    await expectError(await write("tiny.st", good.subarray(0, 5)), /too short/, 0);
    // absurd header length
    const huge = good.slice();
    new DataView(huge.buffer).setBigUint64(0, 1n << 60n, true);
    await expectError(await write("huge.st", huge), /exceeds limit/, 0);
    // header length pointing beyond the file
    const big = good.slice();
    new DataView(big.buffer).setBigUint64(0, BigInt(good.length), true);
    await expectError(await write("big.st", big), /runs past end of file/, 0);
    // offsets out of range (same-length header edit)
    const text = new TextDecoder().decode(good.subarray(8, 8 + n));
    const patch = (from: string, to: string) => {
      assert.equal(from.length, to.length);
      assert.ok(text.includes(from), text);
      const out = good.slice();
      out.set(new TextEncoder().encode(text.replace(from, to)), 8);
      return out;
    };
    await expectError(await write("oob.st", patch("[16,24]", "[16,99]")), /out of range/, 8 + n + 16);
    // size mismatch for dtype x shape
    await expectError(
      await write("size.st", patch('"shape":[2]', '"shape":[3]')),
      /needs 12 bytes/,
      8 + n + 16,
    );
    // gap / overlap
    await expectError(await write("overlap.st", patch("[16,24]", "[12,20]")), /needs 8 bytes|overlaps|gap/);
    // bad dtype, bad JSON
    await expectError(await write("dtype.st", patch('"I32"', '"Q32"')), /unsupported dtype/, 8);
    await expectError(await write("json.st", patch("{", "[")), /does not start with|not valid JSON/, 8);
    // trailing garbage
    const trailing = new Uint8Array(good.length + 4);
    trailing.set(good);
    await expectError(await write("trailing.st", trailing), /trailing bytes/, good.length);
    // decode from memory names "<buffer>"
    assert.throws(() => decodeSafetensors(new Uint8Array(3)), /<buffer>.*byte 0/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// ------------------------------------------------------------------------------------------------ plot

const pngSignature = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

function pngSize(png: Uint8Array): [number, number] {
  const dv = new DataView(png.buffer, png.byteOffset, png.byteLength);
  return [dv.getUint32(16), dv.getUint32(20)];
}

Deno.test("plot: line chart renders to SVG with text and to PNG", async () => {
  const data = [];
  for (let e = 1; e <= 20; e++) {
    data.push({ epoch: e, loss: 2 / e, split: "train" }, { epoch: e, loss: 2.2 / e + 0.05, split: "test" });
  }
  const spec = lineChart({ data, x: "epoch", y: "loss", color: "split", title: "Loss curve", yScale: "log" });
  const svg = await renderVegaLite(spec);
  assert.ok(svg.startsWith("<svg"), svg.slice(0, 80));
  assert.ok(svg.includes("<text"), "SVG has text elements");
  for (const label of ["Loss curve", "epoch", "loss", "train", "test"]) assert.ok(svg.includes(label), label);
  const png = await svgToPng(svg, { scale: 2 });
  assert.deepEqual([...png.subarray(0, 8)], pngSignature);
  assert.ok(png.length > 5000, `PNG size ${png.length}`);
  const [w, h] = pngSize(png);
  assert.ok(w > 500 && h > 400, `${w}x${h}`);
  // wide data (array y) also works
  const wide = lineChart({
    data: [{ t: 1, "acc.train": 0.5, "acc.test": 0.4 }, { t: 2, "acc.train": 0.7, "acc.test": 0.6 }],
    x: "t",
    y: ["acc.train", "acc.test"],
    title: "Accuracy",
  });
  assert.ok((await renderVegaLite(wide)).includes("acc.test"));
});

Deno.test("plot: histogram with markers, scatter on circle, concat, saveFigure", async () => {
  const rnd = (() => {
    let s = 12345;
    return () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
  })();
  const a = Float32Array.from({ length: 2000 }, () => -0.3 + 0.1 * (rnd() + rnd() + rnd() - 1.5));
  const b = Float32Array.from({ length: 2000 }, () => 0.9 + 0.05 * (rnd() + rnd() - 1));
  const hist = histogram({
    values: { "between-class": a, "within-class": b },
    bins: 50,
    title: "Cosine similarities",
    xTitle: "cos",
    markers: [{ value: -1 / 3, label: "-1/(C-1)" }, { value: 1, label: "1" }],
  });
  const svg = await renderVegaLite(hist);
  for (const label of ["Cosine similarities", "-1/(C-1)", "between-class", "cos"]) {
    assert.ok(svg.includes(label), label);
  }
  assert.ok(svg.includes('stroke="red"'), "red marker rules");

  const pts = Array.from({ length: 40 }, (_, i) => {
    const t = (2 * Math.PI * i) / 40;
    return { x: Math.cos(t), y: Math.sin(t), cls: `class ${i % 4}` };
  });
  const scatter = scatterChart({
    data: pts,
    x: "x",
    y: "y",
    color: "cls",
    title: "Embeddings on S¹",
    circle: true,
  });
  const fig = hconcat([hist, scatter], { title: "Figure test" });
  const dir = await Deno.makeTempDir();
  try {
    const out = await saveFigure(join(dir, "figs"), "panel", fig);
    assert.deepEqual(await listDir(join(dir, "figs")), ["panel.png", "panel.svg"]);
    const png = await Deno.readFile(out.png!);
    assert.deepEqual([...png.subarray(0, 8)], pngSignature);
    assert.ok(png.length > 20000, `PNG size ${png.length}`);
    const text = await Deno.readTextFile(out.svg);
    assert.ok(text.includes("Figure test") && text.includes("Embeddings on S¹"));
    const keep = Deno.env.get("KEEP_FIGURES");
    if (keep) await Deno.copyFile(out.png!, keep);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  assert.ok((await getPlotFonts()).buffers.length > 0, "a system font was found (install fonts-dejavu-core)");
});

Deno.test("plot: binValues", () => {
  const { edges, counts } = binValues([0, 0.1, 0.5, 0.99, 1, 2, NaN], 2, 0, 1);
  assert.deepEqual(edges, [0, 0.5, 1]);
  assert.deepEqual(counts, [2, 3]);
});

// ------------------------------------------------------------------------------------------------ cli

const spec = {
  epochs: { type: "integer", default: 10, min: 1, description: "training epochs" },
  lr: { type: "number", default: 0.1, min: 0, description: "learning rate" },
  loss: { type: "string", default: "supcon", choices: ["supcon", "ce"], description: "loss function" },
  batchSizes: { type: "integer[]", default: [32, 64], description: "batch sizes" },
  fast: { type: "boolean", default: false, description: "tiny sizes" },
  augment: { type: "boolean", default: true, description: "use augmentation" },
} as const;
const meta = { name: "fig4", description: "Reproduce figure 4.", now: new Date("2025-01-02T03:04:05Z") };

Deno.test("cli: defaults, overrides, coercion and typing", () => {
  const d = parseExperimentArgsOrThrow([], spec, meta);
  assert.deepEqual(d, {
    epochs: 10,
    lr: 0.1,
    loss: "supcon",
    batchSizes: [32, 64],
    fast: false,
    augment: true,
    seed: 0,
    out: join("runs", "fig4-20250102-030405"),
    json: false,
    quiet: false,
  });
  const c = parseExperimentArgsOrThrow(
    [
      "--epochs",
      "5",
      "--lr=1e-3",
      "--loss",
      "ce",
      "--batch-sizes",
      "8,16",
      "--batch-sizes",
      "128",
      "--fast",
      "--no-augment",
      "--seed",
      "3",
      "--out",
      "/tmp/x",
      "--json",
    ],
    spec,
    meta,
  );
  const epochs: number = c.epochs; // typed
  const loss: "supcon" | "ce" = c.loss; // choices → union type
  const fast: boolean = c.fast;
  assert.equal(epochs, 5);
  assert.equal(c.lr, 0.001);
  assert.equal(loss, "ce");
  assert.deepEqual(c.batchSizes, [8, 16, 128]);
  assert.equal(fast, true);
  assert.equal(c.augment, false);
  assert.equal(c.seed, 3);
  assert.equal(c.out, "/tmp/x");
  assert.equal(c.json, true);
  assert.equal(timestamp(new Date("2025-12-31T23:59:58.123Z")), "20251231-235958");
});

Deno.test("cli: errors name the flag and value (exit code 2)", () => {
  const bad = (args: string[], re: RegExp) => {
    const err = (() => {
      try {
        parseExperimentArgsOrThrow(args, spec, meta);
      } catch (e) {
        return e;
      }
    })();
    assert.ok(err instanceof CliError, `expected CliError for ${args.join(" ")}, got ${err}`);
    assert.equal(err.exitCode, 2);
    assert.match(err.message, re);
  };
  bad(["--epochs", "abc"], /--epochs: expected an integer, got "abc"/);
  bad(["--epochs", "2.5"], /--epochs: expected an integer, got "2.5"/);
  bad(["--epochs", "0"], /--epochs: value 0 is below the minimum 1/);
  bad(["--lr", "fast"], /--lr: expected a number, got "fast"/);
  bad(["--lr="], /--lr: expected a number, got ""/);
  bad(["--loss", "mse"], /--loss: invalid value "mse" \(choose from: supcon, ce\)/);
  bad(["--batch-sizes", "8,x"], /--batch-sizes: expected an integer, got "x"/);
  bad(["--seed", "-1"], /--seed/);
  bad(["--unknown"], /unknown/i);
  bad(["positional"], /positional/i);
  bad(["--epochs"], /--epochs/);
});

Deno.test("cli: --help usage lists flags, descriptions and defaults", () => {
  try {
    parseExperimentArgsOrThrow(["--help"], spec, meta);
    assert.fail("expected CliHelp");
  } catch (e) {
    assert.ok(e instanceof CliHelp);
    assert.equal(e.exitCode, 0);
    for (
      const s of [
        "Usage: fig4",
        "Reproduce figure 4.",
        "--epochs N",
        "training epochs",
        "[default: 10; min 1]",
        "--batch-sizes N,...",
        "[default: 32,64]",
        "--loss {supcon|ce}",
        "--no-augment",
        "--out DIR",
        "--seed N",
        "--json",
        "--help",
      ]
    ) assert.ok(e.text.includes(s), `usage contains ${s}:\n${e.text}`);
  }
  assert.equal(usage(spec, meta).split("\n")[0], "Usage: fig4 [options]");
});

Deno.test("cli: optional options are absent unless given (no sentinel defaults)", () => {
  const spec = {
    iterations: { type: "integer", optional: true, min: 1, description: "iterations (default: the mode's)" },
    data: { type: "string", optional: true, description: "folder" },
    lr: { type: "number", default: 0.1, description: "learning rate" },
  } as const;
  const none = parseExperimentArgsOrThrow([], spec, { name: "t" });
  assert.deepStrictEqual(["iterations" in none, "data" in none, none.lr], [false, false, 0.1]);
  const some = parseExperimentArgsOrThrow(["--iterations", "7", "--data", "d"], spec, { name: "t" });
  const n: number | undefined = some.iterations; // typed as an optional number
  assert.deepStrictEqual([n, some.data], [7, "d"]);
  assert.throws(() => parseExperimentArgsOrThrow(["--iterations", "0"], spec, { name: "t" }), CliError);
  assert.deepStrictEqual(Object.keys(defaultConfig(spec, "o")), ["lr", "out", "seed", "json", "quiet"]);
  const text = usage(spec, { name: "t" });
  assert.match(text, /--iterations N\s+iterations \(default: the mode's\) \[min 1\]\n/);
  assert.match(text, /--data S\s+folder\n/);
});

Deno.test("cli: runDir and saveConfig", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const out = await runDir(join(dir, "a", "b"));
    const cfg = parseExperimentArgsOrThrow(["--out", out], spec, meta);
    const p = await saveConfig(out, cfg);
    assert.equal(p, join(out, "config.json"));
    assert.deepEqual(JSON.parse(await Deno.readTextFile(p)), cfg);
    const s = await writeSummary(out, { acc: 0.9, curve: new Float64Array([1, 2]) });
    assert.deepEqual(JSON.parse(await Deno.readTextFile(s)), { acc: 0.9, curve: [1, 2] });
    assert.deepEqual(await listDir(out), ["config.json", "summary.json"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// ------------------------------------------------------------------------------------------------ progress / summary

Deno.test("progress: non-TTY prints every 10% or interval; TTY uses \\r; quiet is silent", () => {
  let t = 0;
  const out: string[] = [];
  const p = new Progress(100, { label: "train", tty: false, write: (s) => out.push(s), now: () => t });
  for (let i = 0; i < 100; i++) {
    t += 10; // 10 ms per item → 100 it/s
    p.tick(1, `loss ${i}`);
  }
  p.done();
  assert.equal(out.length, 10, out.join(""));
  assert.ok(out.every((l) => l.endsWith("\n") && !l.includes("\r")));
  assert.match(out[0], /^train \[#+-+\] {2}10% 10\/100 100 it\/s ETA 1s \| loss 9\n$/);
  assert.match(out[9], /100% 100\/100 .*done in 1s/);

  out.length = 0;
  t = 0;
  const slow = new Progress(1000, { tty: false, write: (s) => out.push(s), now: () => t, intervalMs: 5000 });
  for (let i = 0; i < 20; i++) {
    t += 1000;
    slow.tick();
  }
  assert.equal(out.length, 4); // every 5 s, no 10 % boundary crossed
  assert.match(out[0], /5\/1000 1\.0 it\/s ETA 16m35s/);

  out.length = 0;
  const tty = new Progress(3, { tty: true, write: (s) => out.push(s), now: () => (t += 200) });
  tty.tick();
  tty.tick();
  tty.tick();
  tty.done();
  assert.ok(out.every((s) => s.startsWith("\r")));
  assert.ok(out.at(-1)!.endsWith("\n"));

  out.length = 0;
  const q = new Progress(3, { quiet: true, write: (s) => out.push(s) });
  q.tick(3);
  q.done();
  assert.equal(out.length, 0);
  assert.equal(formatDuration(3725), "1h02m");
  assert.equal(formatDuration(75), "1m15s");
});

Deno.test("summary: printJsonLine emits one line", () => {
  const line = printJsonLine({ a: 1, v: new Int32Array([1, 2]), nan: NaN, s: "x\ny" });
  assert.equal(line, '{"a":1,"v":[1,2],"nan":null,"s":"x\\ny"}');
  assert.ok(!line.includes("\n"));
});
