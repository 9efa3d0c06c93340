/**
 * The engine's one window on the host environment: an environment variable, where the runtime has them.
 *
 * `mod.ts` is web-standard (it loads in a page), so the engine never names a runtime's namespace
 * directly. Under Deno a variable is read only when `--allow-env` already grants it (queried without a
 * prompt); in a page, or without the permission, the answer is `undefined`.
 *
 * @module
 */

interface DenoLike {
  permissions?: { querySync?(d: { name: "env"; variable: string }): { state: string } };
  env?: { get(name: string): string | undefined };
}

/** The value of environment variable `name`, or `undefined` (no such runtime, not granted, not set). */
export function environmentVariable(name: string): string | undefined {
  const runtime = (globalThis as { Deno?: DenoLike }).Deno;
  if (!runtime?.env) return undefined;
  try {
    const state = runtime.permissions?.querySync?.({ name: "env", variable: name }).state;
    if (state !== undefined && state !== "granted") return undefined;
    return runtime.env.get(name);
  } catch {
    return undefined;
  }
}
