/**
 * First call (pipeline compilation + one run) and a second call of a ResNet-18 training step under a given
 * register tiling: what a larger register block costs in compile time. Run it with a cold shader cache
 * (`MESA_SHADER_CACHE_DISABLE=true` on Mesa) and one process per tiling.
 *
 * Usage: deno run --allow-read --allow-env bench/compile_cost.ts <16|32> [batch 8] [width 1]
 *
 * @module
 */
import { gpu, initDevice } from "../engine/gpu.ts";
import "../engine/autograd.ts";
import { setGemmTiling } from "../engine/ops/matmul.ts";
import { REGISTER_TILING, REGISTER_TILING_32 } from "../shaders/gemm.ts";
import { resnetTrainStep } from "./resnet_step.ts";

const [block, batch = "8", width = "1"] = Deno.args;
if (block !== "16" && block !== "32") {
  console.error("usage: bench/compile_cost.ts <16|32> [batch 8] [width 1]");
  Deno.exit(2);
}
await initDevice({ tuning: "off", kernels: "software" });
setGemmTiling(block === "32" ? REGISTER_TILING_32 : REGISTER_TILING);
const s = resnetTrainStep(Number(batch), Number(width));
let t = performance.now();
s.step();
await gpu().sync();
const first = performance.now() - t;
t = performance.now();
s.step();
await gpu().sync();
const second = performance.now() - t;
console.log(
  `${block}×${block} blocks, batch ${batch}, width ${width}: first step ${(first / 1000).toFixed(1)} s, ` +
    `second ${(second / 1000).toFixed(2)} s, ${gpu().counters.pipelines} pipelines`,
);
s.dispose();
