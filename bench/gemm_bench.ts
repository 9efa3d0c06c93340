/**
 * GEMM-family benchmark: matmul 1024³, [b,512]·[512,b] for b = 256, 1024, and every distinct
 * ResNet-18 (CIFAR) convolution on 32×32 inputs at batch 8 or `--batch` (forward, grad input, grad weight).
 *
 * Each case is warmed up (pipeline compilation) and synced, then timed as `--samples` samples of
 * k calls followed by one `await gpu().sync()`, where k is `--k` or more: enough calls that a sample
 * does at least `--min-gflop` (default 2, one 1024³ matmul) of work, so that small layers are not
 * timed mostly by the fixed cost of a submit and a round trip (about 11 ms on the software adapter;
 * `--min-gflop 0` shows it). The median per-call time gives GFLOP/s
 * (2·M·N·K, or 2·N·O·OH·OW·C·KH·KW for a convolution pass). On shared CPU cores the software
 * adapter's wall time depends on other processes, so the process CPU time (all threads) divided by
 * the core count is reported too ("per N CPU cores").
 *
 * Usage: deno run --allow-read --allow-write --allow-env bench/gemm_bench.ts [--k 3] [--samples 5]
 *   [--min-gflop 2]
 *   [--only matmul|conv] [--tiling register|shared|TMxTNxWXxWY[,field=value…][;…]] [--batch 8]
 *   [--filter substring] [--json out.json]
 *
 * Several `;`-separated tilings (`bench/tiling_arg.ts`; `engine` is the engine's own choice) are timed side
 * by side: every case's samples alternate between them, and each line after the first gives its CPU-time
 * rate as a ratio to the first tiling's.
 */
import { gpu, initDevice } from "../engine/gpu.ts";
import "../engine/autograd.ts";
import process from "node:process";
import { empty, type Tensor, tensor } from "../engine/tensor.ts";
import { matmul, setGemmTiling } from "../engine/ops/matmul.ts";
import {
  conv2dForwardInto,
  conv2dGradInputInto,
  conv2dGradWeightInto,
  type ConvGeometry,
  convGeometry,
} from "../engine/ops/conv.ts";
import type { GemmTiling } from "../shaders/gemm.ts";
import { arg, seededValues as random } from "./harness.ts";
import { parseTiling } from "./tiling_arg.ts";

const K_CALLS = Number(arg("k", "3"));
const SAMPLES = Number(arg("samples", "5"));
const ONLY = arg("only", "");
const TILING = arg("tiling", "");
const JSON_OUT = arg("json", "");
const BATCH = Number(arg("batch", "8"));
const FILTER = arg("filter", "");
const MIN_FLOPS = Number(arg("min-gflop", "2")) * 1e9;

/** One timed case: `run` records one call (its outputs are disposed by the case). */
interface Case {
  name: string;
  flops: number;
  run: () => void;
  dispose: () => void;
}

interface Result {
  name: string;
  /** The tiling's argument (`engine`: the engine's own choice). */
  tiling: string;
  /** Calls per sample. */
  calls: number;
  medianMs: number;
  minMs: number;
  /** FLOPs / median wall time. */
  gflops: number;
  /** FLOPs / (median CPU time of the process / cores): robust to other processes on shared cores. */
  gflopsCpu: number;
}

const CORES = navigator.hardwareConcurrency;

/** Times `c` under each tiling, their samples alternating (the order reversed every other sample). */
async function time(c: Case, tilings: { name: string; tiling: GemmTiling | null }[]): Promise<Result[]> {
  for (const t of tilings) {
    setGemmTiling(t.tiling);
    c.run();
    await gpu().sync(); // compile + first run
  }
  const calls = Math.max(K_CALLS, Math.ceil(MIN_FLOPS / c.flops));
  const samples: number[][] = tilings.map(() => []);
  const cpu: number[][] = tilings.map(() => []);
  for (let s = 0; s < SAMPLES; s++) {
    const order = tilings.map((_, j) => j);
    if (s % 2 === 1) order.reverse();
    for (const j of order) {
      setGemmTiling(tilings[j].tiling);
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      for (let i = 0; i < calls; i++) c.run();
      await gpu().sync();
      samples[j].push((performance.now() - t0) / calls);
      const used = process.cpuUsage(c0);
      cpu[j].push((used.user + used.system) / 1000 / calls);
    }
  }
  setGemmTiling(null);
  return tilings.map((t, j) => {
    const wall = [...samples[j]].sort((a, b) => a - b);
    const cpuSorted = [...cpu[j]].sort((a, b) => a - b);
    const median = wall[Math.floor(wall.length / 2)];
    const cpuMedian = cpuSorted[Math.floor(cpuSorted.length / 2)] / CORES;
    return {
      name: c.name,
      tiling: t.name,
      calls,
      medianMs: median,
      minMs: wall[0],
      gflops: c.flops / median / 1e6,
      gflopsCpu: c.flops / cpuMedian / 1e6,
    };
  });
}

function matmulCase(name: string, M: number, K: number, N: number, transA = false, transB = false): Case {
  const a = tensor(random(M * K, 1), transA ? [K, M] : [M, K]);
  const b = tensor(random(K * N, 2), transB ? [N, K] : [K, N]);
  return {
    name,
    flops: 2 * M * N * K,
    run: () => matmul(a, b, { transA, transB }).dispose(),
    dispose: () => {
      a.dispose();
      b.dispose();
    },
  };
}

function convCases(
  label: string,
  C: number,
  O: number,
  HW: number,
  k: number,
  stride: number,
  pad: number,
): Case[] {
  const N = BATCH;
  const x = tensor(random(N * C * HW * HW, 3), [N, C, HW, HW]);
  const w = tensor(random(O * C * k * k, 4), [O, C, k, k]);
  const g: ConvGeometry = convGeometry(x, w, stride, pad);
  const dy = tensor(random(N * O * g.OH * g.OW, 5), [N, O, g.OH, g.OW]);
  const flops = 2 * N * O * g.OH * g.OW * C * k * k;
  const once = (f: (out: Tensor) => void, shape: number[]) => () => {
    const out = empty(shape);
    f(out);
    out.dispose();
  };
  const base = `conv ${label} ${C}→${O} ${k}×${k} s${stride} p${pad} ${HW}×${HW}`;
  return [
    {
      name: `${base} fwd`,
      flops,
      run: once((y) => conv2dForwardInto(y, x, w, g), [N, O, g.OH, g.OW]),
      dispose() {},
    },
    {
      name: `${base} dx`,
      flops,
      run: once((dx) => conv2dGradInputInto(dx, dy, w, g), [N, C, HW, HW]),
      dispose() {},
    },
    {
      name: `${base} dw`,
      flops,
      run: once((dw) => conv2dGradWeightInto(dw, x, dy, g), [O, C, k, k]),
      dispose: () => {
        x.dispose();
        w.dispose();
        dy.dispose();
      },
    },
  ];
}

await initDevice();
const TILINGS = (TILING || "engine").split(";").map((s) => s.trim()).filter((s) => s)
  .map((name) => ({ name, tiling: name === "engine" ? null : parseTiling(name) }));
console.log(
  `adapter: ${gpu().report.name} (fallback ${gpu().report.isFallback}); k=${K_CALLS}, samples=${SAMPLES}`,
);

const results: Result[] = [];
async function bench(cases: Case[]): Promise<void> {
  for (const c of cases) {
    if (FILTER && !c.name.includes(FILTER)) {
      c.dispose();
      continue;
    }
    const rs = await time(c, TILINGS);
    for (const r of rs) {
      results.push(r);
      const label = TILINGS.length > 1 ? `${r.name} [${r.tiling}]` : r.name;
      const ratio = TILINGS.length > 1 && r !== rs[0]
        ? `  ×${(r.gflopsCpu / rs[0].gflopsCpu).toFixed(2)}`
        : "";
      console.log(
        `${label.padEnd(44)} ${r.medianMs.toFixed(2).padStart(9)} ms (min ${r.minMs.toFixed(2)})  ` +
          `${r.gflops.toFixed(2).padStart(7)} GFLOP/s wall, ${
            r.gflopsCpu.toFixed(2).padStart(7)
          } per ${CORES} CPU cores (${r.calls} calls/sample)${ratio}`,
      );
    }
    c.dispose();
  }
}

if (ONLY !== "conv") {
  await bench([
    matmulCase("matmul 1024×1024·1024×1024", 1024, 1024, 1024),
    // Transposed operands: Aᵀ·B reads A with four scalar loads per vec4; A·Bᵀ takes the dot-product kernel.
    matmulCase("matmul 1024³ Aᵀ·B", 1024, 1024, 1024, true, false),
    matmulCase("matmul 1024³ A·Bᵀ", 1024, 1024, 1024, false, true),
    matmulCase("matmul 256×512·512×256", 256, 512, 256),
    matmulCase("matmul 1024×512·512×1024", 1024, 512, 1024),
    // Plain matmuls of the GEMM shapes of some convolution passes (M×K·K×N), to tell the cost of the
    // shape (short K, few rows) from the cost of the im2col addressing.
    matmulCase("matmul 64×576·576×8192 (l1 fwd)", 64, 576, 8192),
    matmulCase("matmul 512×4608·4608×128 (l4b fwd/dx)", 512, 4608, 128),
    matmulCase("matmul 512×128·128×4608 (l4b dw)", 512, 128, 4608),
    matmulCase("matmul 64×27·27×8192 (stem fwd)", 64, 27, 8192),
    matmulCase("matmul 128×64·64×2048 (l2sc fwd)", 128, 64, 2048),
  ]);
}
if (ONLY !== "matmul") {
  const shapes: [string, number, number, number, number, number, number][] = [
    ["stem", 3, 64, 32, 3, 1, 1],
    ["l1", 64, 64, 32, 3, 1, 1],
    ["l2a", 64, 128, 32, 3, 2, 1],
    ["l2sc", 64, 128, 32, 1, 2, 0],
    ["l2b", 128, 128, 16, 3, 1, 1],
    ["l3a", 128, 256, 16, 3, 2, 1],
    ["l3sc", 128, 256, 16, 1, 2, 0],
    ["l3b", 256, 256, 8, 3, 1, 1],
    ["l4a", 256, 512, 8, 3, 2, 1],
    ["l4sc", 256, 512, 8, 1, 2, 0],
    ["l4b", 512, 512, 4, 3, 1, 1],
  ];
  for (const s of shapes) await bench(convCases(...s));
}
if (JSON_OUT) await Deno.writeTextFile(JSON_OUT, JSON.stringify(results, null, 2));
