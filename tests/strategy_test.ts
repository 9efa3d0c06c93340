/**
 * Kernel strategies: the `initDevice({ kernels })` option and `SUPCON_KERNELS` select the kernel family on
 * any adapter, a bad value is a clear error, and the "gpu" family falls back to register-blocked GEMMs
 * (with correct results) on a device whose limits cannot hold its workgroup tiles.
 */
import { equal, match, throws } from "node:assert/strict";
import { assertClose, gpuTest, randomArray, setup } from "./util.ts";
import { initDevice } from "../engine/gpu.ts";
import { GpuError } from "../engine/device.ts";
import { tensor } from "../engine/tensor.ts";
import { resolveKernelStrategy } from "../engine/strategy.ts";
import { gemmFallbackReason, gemmTiling, matmul } from "../engine/ops/matmul.ts";
import { REGISTER_TILING, SHARED_TILING, tilingMisfit } from "../shaders/gemm.ts";
import { matmulRef } from "./reference/matmul_ref.ts";

Deno.test("strategy: auto follows the adapter, explicit values win, unknown values name their source", () => {
  equal(resolveKernelStrategy(undefined, { isFallback: true }), "software");
  equal(resolveKernelStrategy("auto", { isFallback: false }), "gpu");
  equal(resolveKernelStrategy(" gpu ", { isFallback: true }), "gpu");
  equal(resolveKernelStrategy("software", { isFallback: false }), "software");
  throws(() => resolveKernelStrategy("cuda", { isFallback: true }, "SUPCON_KERNELS"), (e: Error) => {
    equal(e instanceof GpuError, true);
    match(e.message, /SUPCON_KERNELS="cuda": expected one of auto, software, gpu/);
    return true;
  });
});

Deno.test("strategy: tilingMisfit names the limit a tiling exceeds", () => {
  equal(tilingMisfit(SHARED_TILING, {}), null);
  equal(tilingMisfit(REGISTER_TILING, { maxComputeWorkgroupStorageSize: 0 }), null);
  match(tilingMisfit(SHARED_TILING, { maxComputeWorkgroupStorageSize: 4096 })!, /8192 bytes .* > 4096/);
  match(tilingMisfit(SHARED_TILING, { maxComputeInvocationsPerWorkgroup: 128 })!, /256 invocations .* > 128/);
});

Deno.test(
  "strategy: initDevice({ kernels }) re-selects the GEMM family; limits too low fall back, exactly",
  gpuTest,
  async () => {
    const g = await setup();
    const before = g.kernels;
    const limits = g.report.limits;
    const saved = limits.maxComputeWorkgroupStorageSize;
    try {
      await initDevice({ kernels: "gpu" });
      equal(g.kernels, "gpu");
      equal(gemmTiling(), SHARED_TILING);
      equal(gemmFallbackReason(), null);
      await initDevice({ kernels: "software" });
      equal(gemmTiling(), REGISTER_TILING);

      // A device that cannot hold the 8 KiB of staged tiles: the "gpu" strategy uses register blocking.
      await initDevice({ kernels: "gpu" });
      limits.maxComputeWorkgroupStorageSize = 4096;
      equal(gemmTiling(), REGISTER_TILING);
      match(gemmFallbackReason()!, /workgroup memory > 4096/);
      const [M, N, K] = [37, 29, 45];
      const a = randomArray(M * K, 1);
      const b = randomArray(K * N, 2);
      const c = matmul(tensor(a, [M, K]), tensor(b, [K, N]));
      assertClose(await c.toArray(), matmulRef(a, b, { M, N, K }), { rtol: 1e-4, atol: 1e-4 * Math.sqrt(K) });
    } finally {
      limits.maxComputeWorkgroupStorageSize = saved;
      g.kernels = before;
    }
  },
);

// Deno only: it starts a process.
Deno.test("strategy: SUPCON_KERNELS selects the family in a fresh process and rejects unknown values", async () => {
  const code = `import { initDevice } from "./engine/gpu.ts";
try { console.log((await initDevice()).kernels); } catch (e) { console.log(e.message); }`;
  const out = async (value: string) => {
    const { stdout } = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "--allow-env=SUPCON_KERNELS", code],
      env: { SUPCON_KERNELS: value },
      stdout: "piped",
      stderr: "null",
    }).output();
    return new TextDecoder().decode(stdout).trim();
  };
  equal(await out("gpu"), "gpu");
  equal(await out("software"), "software");
  match(await out("metal"), /SUPCON_KERNELS="metal": expected one of auto, software, gpu/);
});
