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

interface DenoFiles {
  permissions?: { querySync?(d: { name: "read" | "write"; path: string }): { state: string } };
  readTextFile?(path: string): Promise<string>;
  writeTextFile?(path: string, text: string): Promise<void>;
  rename?(from: string, to: string): Promise<void>;
  mkdir?(path: string, options: { recursive: boolean }): Promise<void>;
  remove?(path: string): Promise<void>;
  pid?: number;
}

/** Text-file access to one path of the host, where the runtime has files and grants them. */
export interface HostTextFile {
  /** The path. */
  path: string;
  /** Why the file cannot be written (`--allow-write` does not grant its folder), or null. */
  readOnly: string | null;
  /** The file's text, or null when it does not exist. */
  read(): Promise<string | null>;
  /** Replaces the file atomically (a temporary file in the same folder, then a rename). */
  write(text: string): Promise<void>;
}

/**
 * Access to the text file at `path`, or a string saying why there is none (no such runtime, or
 * `--allow-read` does not already grant the path: queried without a prompt). Without `--allow-write` for its
 * folder the file is read-only, and `write` throws saying so.
 */
export function hostTextFile(path: string): HostTextFile | string {
  const runtime = (globalThis as { Deno?: DenoFiles }).Deno;
  if (!runtime?.readTextFile || !runtime.writeTextFile || !runtime.rename || !runtime.mkdir) {
    return "this runtime has no file system";
  }
  const folder = path.replace(/[\\/][^\\/]*$/, "") || ".";
  const denied = (name: "read" | "write", target: string): string | null => {
    try {
      const state = runtime.permissions?.querySync?.({ name, path: target }).state;
      return state === undefined || state === "granted" ? null : `--allow-${name} does not grant ${target}`;
    } catch {
      return `--allow-${name} cannot be queried for ${target}`;
    }
  };
  const noRead = denied("read", path);
  if (noRead) return noRead;
  const readOnly = denied("write", folder);
  const files = runtime as Required<DenoFiles>;
  return {
    path,
    readOnly,
    async read() {
      try {
        return await files.readTextFile(path);
      } catch (e) {
        if ((e as Error).name === "NotFound") return null;
        throw e;
      }
    },
    async write(text: string) {
      if (readOnly) throw new Error(readOnly);
      await files.mkdir(folder, { recursive: true });
      const tmp = `${path}.${files.pid ?? 0}.${Math.random().toString(36).slice(2)}.tmp`;
      try {
        await files.writeTextFile(tmp, text);
        await files.rename(tmp, path);
      } catch (e) {
        await files.remove?.(tmp).catch(() => {});
        throw e;
      }
    },
  };
}
