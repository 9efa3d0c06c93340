/**
 * The README's custom-training example (examples/fashion_sc.ts): the README shows exactly the file's code,
 * and the file runs — a small conv net trained with SC through `train/`, a checkpoint with the model and
 * the optimiser state, a linear probe whose test error beats chance (Fashion-MNIST when installed, else
 * synthetic images).
 */
import nodeAssert from "node:assert/strict";
import { join } from "node:path";
import { gpuTest } from "./util.ts";
import { loadSafetensors } from "../train/safetensors.ts";

const EXAMPLE = "examples/fashion_sc.ts";

Deno.test("README: the custom-training example is examples/fashion_sc.ts, verbatim", async () => {
  const readme = await Deno.readTextFile("README.md");
  const file = await Deno.readTextFile(EXAMPLE);
  const blocks = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]);
  nodeAssert.ok(
    blocks.some((b) => b === file),
    `README.md has no \`\`\`ts block equal to ${EXAMPLE} (copy the file into the README's example)`,
  );
});

Deno.test({
  name: "examples/fashion_sc.ts: trains, checkpoints, and its probe beats chance",
  ...gpuTest,
  async fn() {
    const out = await Deno.makeTempDir({ prefix: "fashion_sc_" });
    const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", EXAMPLE, "--steps", "60", "--n", "1024", "--out", out],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(stdout);
    nodeAssert.equal(
      code,
      0,
      `${EXAMPLE} exited with ${code}:\n${text}\n${new TextDecoder().decode(stderr)}`,
    );
    nodeAssert.match(text, /^step 50: SC loss per anchor \d/m);
    nodeAssert.match(text, /^completed after 60 steps$/m);
    const error = Number(text.match(/^test error ([\d.]+)%/m)?.[1]) / 100;
    nodeAssert.ok(error < 0.8, `test error ${error} should beat chance (0.9)`);
    const file = await loadSafetensors(join(out, "checkpoint.safetensors"));
    nodeAssert.equal(file.metadata.step, "60");
    for (const name of ["conv1.weight", "bn2.running_var", "optimizer.momentum.conv2.weight"]) {
      nodeAssert.ok(name in file.tensors, `checkpoint lacks ${name}`);
    }
    await Deno.remove(out, { recursive: true });
  },
});
