/**
 * The engine's seams: `tensor()` keeps an integer typed array's type, `backward()` needs no particular
 * import order, and autograd reaches an optimiser's gradient buffer only through the `GradSink` the
 * optimiser owns.
 */
import { equal } from "node:assert/strict";
import { gpuTest, setup } from "./util.ts";
import { tensor } from "../engine/tensor.ts";
import { SGD } from "../engine/optim/sgd.ts";
import { Rng as EngineRng } from "../engine/rng.ts";
import { Rng as DataRng } from "../data/sampler.ts";

Deno.test(
  "tensor(): Int32Array → i32, Uint32Array → u32, other data → f32, an explicit dtype wins",
  gpuTest,
  async () => {
    await setup();
    const labels = tensor(new Int32Array([0, 2, -1]));
    equal(labels.dtype, "i32");
    equal(String(await labels.toArray()), "0,2,-1");
    equal(tensor(new Uint32Array([7, 4_000_000_000])).dtype, "u32");
    equal(tensor(new Float64Array([0.5])).dtype, "f32");
    equal(tensor([1, 2]).dtype, "f32");
    equal(tensor(new Int32Array([3]), [1], { dtype: "f32" }).dtype, "f32");
  },
);

Deno.test("backward() works in a program that imports only the tensor module", async () => {
  const code = `import { initDevice } from "./engine/gpu.ts";
import { tensor } from "./engine/tensor.ts";
await initDevice();
const x = tensor([1, 2, 3], [3], { requiresGrad: true });
x.backward(tensor([4, 5, 6], [3]));
console.log(String(await x.grad.toArray()));`;
  const { stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--allow-env", code],
    stdout: "piped",
    stderr: "piped",
  }).output();
  equal(new TextDecoder().decode(stdout).trim(), "4,5,6", new TextDecoder().decode(stderr));
});

Deno.test(
  "SGD owns its gradient sinks: fresh after zeroGrad, taken once, gone after dispose",
  gpuTest,
  async () => {
    await setup();
    const p = tensor([1, 2], [2], { requiresGrad: true });
    const sgd = new SGD([p], { lr: 0.1 });
    const sink = p.gradSink!;
    equal(sink.fresh, false);
    sgd.zeroGrad();
    equal(sink.fresh, true);
    equal(sink.takeFresh(), sink.grad);
    equal(sink.takeFresh(), null);
    sgd.zeroGrad();
    sink.markUsed();
    equal(sink.fresh, false);
    sgd.dispose();
    equal(p.gradSink, undefined);
    p.dispose();
  },
);

Deno.test("Rng lives in engine/rng.ts; data/sampler.ts re-exports the same class", () => {
  equal(DataRng, EngineRng);
  equal(new EngineRng(5).uniform(), new DataRng(5).uniform());
});
