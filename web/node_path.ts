/**
 * `node:path` for the page: `train/safetensors.ts` imports `dirname` (for its Deno file writer, which
 * the page never calls), and `deno bundle` leaves that import in the bundle. The page's import map
 * points `node:path` here, bundled by `deno task web` as `node-path.js`: the npm port of Node's module.
 *
 * @module
 */
// deno-lint-ignore no-import-prefix -- pinned inline: only the web build bundles this
import path from "npm:path-browserify@1.0.1";

const p = path as unknown as typeof import("node:path");
/** Node's path functions (POSIX). */
export const { basename, dirname, extname, isAbsolute, join, normalize, relative, resolve, sep } = p;
export default p;
