/**
 * The page side of `bench/browser_tilings.ts`: GEMM-family cases timed under several forced tilings, samples
 * alternating between the tilings (the order reversed every other sample), behind `globalThis.tilings`.
 *
 * @module
 */
import { gpu, initDevice } from "../engine/gpu.ts";
import "../engine/autograd.ts";
import { empty, tensor } from "../engine/tensor.ts";
import { matmul, setGemmTiling } from "../engine/ops/matmul.ts";
import {
  conv2dForwardInto,
  conv2dGradInputInto,
  conv2dGradWeightInto,
  convGeometry,
} from "../engine/ops/conv.ts";
import type { GemmTiling } from "../shaders/gemm.ts";

/** Median ms per case, one per tiling, in the order given. */
export type TilingTimes = Record<string, number[]>;

/** What `bench/browser_tilings.ts` calls in the page. */
export interface TilingsPage {
  run(tilings: (GemmTiling | null)[], samples: number, batch: number): Promise<TilingTimes>;
}

const values = (n: number, seed: number) =>
  Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + seed));

/** ResNet-18 (CIFAR) layers: the stem, a 3×3 stride-1, a 3×3 stride-2 and the deepest 3×3 layer. */
const LAYERS = [["stem", 3, 64, 32, 1], ["l1", 64, 64, 32, 1], ["l3a", 128, 256, 16, 2], [
  "l4b",
  512,
  512,
  4,
  1,
]] as const;

const page: TilingsPage = {
  async run(tilings, samples, batch) {
    await initDevice({ kernels: "gpu" });
    const out: TilingTimes = {};
    const time = async (name: string, f: () => void) => {
      for (const t of tilings) {
        setGemmTiling(t);
        f();
        await gpu().sync(); // compilation and first run
      }
      const ms: number[][] = tilings.map(() => []);
      for (let s = 0; s < samples; s++) {
        const order = tilings.map((_, j) => j);
        if (s % 2) order.reverse();
        for (const j of order) {
          setGemmTiling(tilings[j]);
          const t0 = performance.now();
          f();
          await gpu().sync();
          ms[j].push(performance.now() - t0);
        }
      }
      setGemmTiling(null);
      out[name] = ms.map((m) => m.sort((a, b) => a - b)[m.length >> 1]);
    };
    const a = tensor(values(1024 * 1024, 1), [1024, 1024]);
    const b = tensor(values(1024 * 1024, 2), [1024, 1024]);
    await time("matmul 1024³", () => matmul(a, b).dispose());
    a.dispose();
    b.dispose();
    for (const [label, C, O, HW, s] of LAYERS) {
      const N = batch;
      const x = tensor(values(N * C * HW * HW, 3), [N, C, HW, HW]);
      const w = tensor(values(O * C * 9, 4), [O, C, 3, 3]);
      const g = convGeometry(x, w, s, 1);
      const dy = tensor(values(N * O * g.OH * g.OW, 5), [N, O, g.OH, g.OW]);
      const into = (shape: number[], f: (t: ReturnType<typeof empty>) => void) => () => {
        const t = empty(shape);
        f(t);
        t.dispose();
      };
      const name = `conv ${label} ${C}→${O} 3×3 s${s} ${HW}×${HW}`;
      await time(`${name} fwd`, into([N, O, g.OH, g.OW], (y) => conv2dForwardInto(y, x, w, g)));
      await time(`${name} dx`, into([N, C, HW, HW], (t) => conv2dGradInputInto(t, dy, w, g)));
      await time(`${name} dw`, into([O, C, 3, 3], (t) => conv2dGradWeightInto(t, x, dy, g)));
      [x, w, dy].forEach((t) => t.dispose());
    }
    return out;
  },
};

(globalThis as { tilings?: TilingsPage }).tilings = page;
