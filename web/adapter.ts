/// <reference lib="dom" />
/**
 * Panel "About this adapter": the engine's adapter report (name, vendor, fallback or not, the kernel
 * family in use, features, the limits granted) and a quick speed probe: a square matmul and a 3×3
 * convolution, timed over a few repetitions after a warm-up (compilation) run.
 *
 * @module
 */
import { conv2d, gpu, matmul, tensor, tidy } from "../mod.ts";
import { $, acquireGpu, releaseGpu, setText } from "./ui.ts";

/** One probe's result. */
export interface ProbeResult {
  /** What was timed. */
  name: string;
  /** Floating-point operations of one repetition. */
  flops: number;
  /** Median seconds per repetition. */
  seconds: number;
  /** flops / seconds / 1e9. */
  gflops: number;
}

function randn(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  });
}

async function time(name: string, flops: number, reps: number, f: () => void): Promise<ProbeResult> {
  f(); // warm-up: compiles the pipelines
  await gpu().sync();
  const times: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    f();
    await gpu().sync();
    times.push((performance.now() - t0) / 1000);
  }
  times.sort((a, b) => a - b);
  const seconds = times[Math.floor(times.length / 2)];
  return { name, flops, seconds, gflops: flops / seconds / 1e9 };
}

/** Times an n×n×n matmul and a batch-`b`, c→c channel 3×3 convolution on s×s images. */
export async function speedProbe(o: { n: number; b: number; c: number; s: number; reps: number }): Promise<
  ProbeResult[]
> {
  const { n, b, c, s, reps } = o;
  const A = tensor(randn(n * n, 1), [n, n]);
  const B = tensor(randn(n * n, 2), [n, n]);
  const x = tensor(randn(b * c * s * s, 3), [b, c, s, s]);
  const w = tensor(randn(c * c * 9, 4), [c, c, 3, 3]);
  try {
    const mm = await time(`matmul ${n}×${n}×${n}`, 2 * n ** 3, reps, () => tidy(() => void matmul(A, B)));
    const conv = await time(
      `conv 3×3, ${b}×${c}×${s}×${s} → ${c} channels`,
      2 * b * c * c * 9 * s * s,
      reps,
      () => tidy(() => void conv2d(x, w, { padding: 1 })),
    );
    return [mm, conv];
  } finally {
    for (const t of [A, B, x, w]) t.dispose();
  }
}

/** Fills the adapter report and wires the probe button (elements under `#adapter`). */
export function mountAdapter(): void {
  const g = gpu();
  const r = g.report;
  const rows: [string, string][] = [
    ["adapter", r.name || "(unnamed)"],
    ["vendor", r.vendor || "—"],
    ["architecture", r.architecture || "—"],
    ["software (fallback) adapter", r.isFallback ? "yes" : "no"],
    ["kernel family", g.kernels],
    ["features", r.features.join(", ") || "—"],
    ...Object.entries(r.limits).map(([k, v]) => [k, v.toLocaleString("en")] as [string, string]),
  ];
  const body = $("adapter-table").querySelector("tbody")!;
  body.replaceChildren(...rows.map(([k, v]) => {
    const tr = document.createElement("tr");
    const th = document.createElement("th");
    th.scope = "row";
    th.textContent = k;
    const td = document.createElement("td");
    td.textContent = v;
    tr.append(th, td);
    return tr;
  }));
  $("adapter-name").textContent = r.name;
  const button = $<HTMLButtonElement>("adapter-probe");
  const status = $("adapter-status");
  const out = $("adapter-probe-out").querySelector("tbody")!;
  button.disabled = false;
  button.addEventListener("click", async () => {
    const other = acquireGpu("the speed probe");
    if (other) {
      setText(status, `${other} is using the GPU (running or paused): finish or reset it first`);
      return;
    }
    button.disabled = true;
    setText(status, "timing…");
    try {
      const big = !r.isFallback;
      const results = await speedProbe(
        big ? { n: 1024, b: 8, c: 64, s: 32, reps: 5 } : { n: 256, b: 2, c: 16, s: 16, reps: 3 },
      );
      out.replaceChildren(...results.map((p) => {
        const tr = document.createElement("tr");
        for (
          const text of [p.name, `${(p.seconds * 1000).toFixed(2)} ms`, `${p.gflops.toFixed(2)} GFLOP/s`]
        ) {
          const td = document.createElement("td");
          td.textContent = text;
          tr.append(td);
        }
        return tr;
      }));
      setText(
        status,
        `median of ${big ? 5 : 3} runs after a warm-up run (sizes ${
          big ? "for a GPU" : "kept small on a software adapter"
        })`,
      );
      $("adapter").dataset.probe = "done";
    } catch (e) {
      setText(status, `probe failed: ${(e as Error).message}`);
    } finally {
      button.disabled = false;
      releaseGpu("the speed probe");
    }
  });
}
