/**
 * One test suite, run on every WebGPU implementation. The portable test files (the GPU tests that use no
 * Deno API: ops, optimiser, models, training steps, engine core, augmentation, memory) register their
 * cases with `test()` instead of `Deno.test`:
 *
 * - under Deno, `test()` is `Deno.test` with {@link gpuTest}'s options (wgpu/Naga on whatever adapter
 *   Deno finds: llvmpipe in CI);
 * - anywhere else (a browser page: `tests/dawn/page.ts`, run in Chromium's Dawn/Tint by
 *   `tests/dawn/run.ts`), `test()` appends the case to a list that the page runs.
 *
 * Assertions stay `node:assert/strict`; the page maps that specifier to a browser build of the same API
 * (`tests/dawn/assert_strict.ts`). Test files that read files or start processes keep calling `Deno.test`
 * and run under Deno only.
 */
import { gpuTest } from "./util.ts";

/** A test case: the subset of `Deno.TestDefinition` the portable files use. */
export interface TestCase {
  name: string;
  fn: () => void | Promise<void>;
  /** Skipped everywhere when true. */
  ignore?: boolean;
  /**
   * `"once"`: in the Dawn run (`tests/dawn/run.ts --kernels both`) this case runs under the first kernel
   * strategy only, because a second run costs minutes on SwiftShader and buys little (the case says why).
   * Deno runs it as usual.
   */
  dawn?: "once";
}

const cases: TestCase[] = [];
const deno = (globalThis as { Deno?: { test?: unknown } }).Deno;

/** Registers a case: `Deno.test` under Deno, the page's list elsewhere. */
export function test(definition: TestCase): void;
export function test(name: string, fn: TestCase["fn"]): void;
export function test(a: TestCase | string, b?: TestCase["fn"]): void {
  const definition: TestCase = typeof a === "string" ? { name: a, fn: b! } : a;
  if (typeof deno?.test === "function") {
    const { dawn: _, ...denoDefinition } = definition;
    Deno.test({ ...gpuTest, ...denoDefinition });
  } else cases.push(definition);
}

/** The cases registered outside Deno, in registration (import) order. */
export function registeredTests(): readonly TestCase[] {
  return cases;
}
