/**
 * Users import `mod.ts` from a URL, where our deno.json (and any import map) is not seen. This test
 * serves the repository on 127.0.0.1 and runs a script in a fresh Deno process that imports
 * `mod.ts` by URL and computes a supervised contrastive loss, compared with the float64 reference.
 */
import assert from "node:assert/strict";
import { join, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import { scLossBatchF64 } from "../theory/sc_loss_ref.ts";

const root = normalize(join(fileURLToPath(new URL(".", import.meta.url)), ".."));

Deno.test({
  name: "mod.ts imported by URL from a local HTTP server computes supConLoss",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
      const path = normalize(join(root, decodeURIComponent(new URL(req.url).pathname)));
      if (!path.startsWith(root + "/") || !path.endsWith(".ts")) {
        return new Response("forbidden", { status: 403 });
      }
      try {
        const body = await Deno.readFile(path);
        return new Response(body, { headers: { "content-type": "application/typescript" } });
      } catch {
        return new Response("not found", { status: 404 });
      }
    });
    const port = server.addr.port;
    const dir = await Deno.makeTempDir();
    try {
      const points = [[1, 0.2, -0.3], [0.9, 0.1, 0], [-0.2, 1, 0.4], [0.1, 0.8, 0.5], [0.3, -1, 0.2]];
      const labels = [0, 0, 1, 1, 2];
      const script = join(dir, "user.ts");
      await Deno.writeTextFile(
        script,
        `import { initDevice, normalizeToSphere, supConLoss, tensor } from "http://127.0.0.1:${port}/mod.ts";
await initDevice();
const z = normalizeToSphere(tensor(${JSON.stringify(points)}), 1.5);
const loss = supConLoss(z, tensor(${JSON.stringify(labels)}, [${labels.length}], { dtype: "i32" }));
console.log(JSON.stringify({ loss: await loss.item() }));
`,
      );
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "--no-config", "--no-lock", `--allow-import=127.0.0.1:${port}`, script],
        cwd: dir,
        env: { DENO_DIR: join(dir, "deno_dir"), NO_COLOR: "1" },
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stdout = new TextDecoder().decode(out.stdout);
      const stderr = new TextDecoder().decode(out.stderr);
      assert.equal(out.code, 0, `user script failed:\n${stderr}`);
      const { loss } = JSON.parse(stdout.trim().split("\n").at(-1)!);
      const rho = 1.5;
      const z = points.map((p) => {
        const n = Math.hypot(...p);
        return p.map((v) => (rho * v) / n);
      });
      const expected = scLossBatchF64(z, labels, [0, 1, 2, 3, 4]);
      // float32 on the GPU against float64: loss terms are O(1), so 1e-5 absolute is ample.
      assert.ok(Math.abs(loss - expected) <= 1e-5, `${loss} vs ${expected}`);
      assert.ok(expected > 0.5, "the configuration gives a loss of order one");
    } finally {
      await server.shutdown();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
