/**
 * Preloaded by the test runner (`deno test --preload tests/wgsl_dump_preload.ts`): with `SUPCON_WGSL_DUMP`
 * set to a folder, every kernel the suite generates is also written there, one file per distinct source,
 * named by its SHA-256 and headed by the kernel's name and the test module that made it (except kernels named
 * `deliberately.*`: invalid on purpose, to test error reporting). `tests/tint_check.ts`
 * then compiles them all with Dawn's Tint, the compiler of Chrome and every other Dawn-based browser.
 *
 * (Dawn cannot share a process with Deno's own WebGPU: loading both crashes, so the check runs apart.)
 *
 * @module
 */
import { addShaderCheck } from "../engine/kernel.ts";

const dir = Deno.env.get("SUPCON_WGSL_DUMP");
if (dir) {
  Deno.mkdirSync(dir, { recursive: true });
  const module = Deno.mainModule.replace(/^.*\/tests\//, "tests/");
  const seen = new Set<string>();
  addShaderCheck(async (code, name) => {
    // Tests of error reporting compile invalid WGSL on purpose; they name such kernels `deliberately.*`.
    if (seen.has(code) || name.startsWith("deliberately.")) return null;
    seen.add(code);
    const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(code));
    const hash = Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
    const path = `${dir}/${hash}.wgsl`;
    try {
      Deno.writeTextFileSync(path, `// kernel: ${name}\n// made by: ${module}\n${code}`, { createNew: true });
    } catch (e) {
      if (!(e instanceof Deno.errors.AlreadyExists)) throw e;
    }
    return null;
  });
}
