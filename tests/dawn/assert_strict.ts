/**
 * `node:assert/strict` for the browser page: the npm port of Node's assert module (`assert`, the package
 * bundlers have long substituted for Node's), strict mode. The Dawn page's import map points the specifier
 * `node:assert/strict` here, so the portable test files keep Node's assertion API unchanged under Deno and
 * in Chromium. The package reads `process.env` when it loads: the page defines an empty `process` first.
 */
// deno-lint-ignore no-import-prefix -- pinned inline, as elsewhere in the repo (no import map)
import nodeAssert from "npm:assert@2.1.0";
import type nodeStrict from "node:assert/strict";

const assert: typeof nodeStrict = (nodeAssert as unknown as { strict: typeof nodeStrict }).strict;
export default assert;
export const {
  AssertionError,
  deepEqual,
  deepStrictEqual,
  doesNotReject,
  doesNotThrow,
  equal,
  fail,
  notDeepEqual,
  notDeepStrictEqual,
  notEqual,
  notStrictEqual,
  ok,
  rejects,
  strictEqual,
  throws,
} = assert;
