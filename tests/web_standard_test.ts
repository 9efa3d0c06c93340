/**
 * `mod.ts` runs wherever WebGPU runs: its module graph imports no `node:`, `npm:` or `jsr:` module
 * (every import is relative, so it also loads from a URL) and no module of it uses the `Deno`
 * namespace. The graph comes from `deno info --json mod.ts`; each local module is tokenised (comments,
 * strings, template text and regular expressions set aside) so that only code is judged. `deno task
 * bundle` builds `dist/supcon.js` for browsers, with the same exports as `mod.ts`, and types.
 */
import assert from "node:assert/strict";
import { join, normalize, relative } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = normalize(join(fileURLToPath(new URL(".", import.meta.url)), ".."));

// ---------------------------------------------------------------- a small JS/TS tokeniser

/** A stretch of source: code, or one comment, string (or template text) or regular expression literal. */
type Span = { kind: "code" | "comment" | "string" | "regex"; start: number; end: number };

/** Words after which `/` starts a regular expression rather than a division. */
const BEFORE_REGEX = new Set([
  "return",
  "typeof",
  "instanceof",
  "in",
  "of",
  "new",
  "delete",
  "void",
  "throw",
  "case",
  "do",
  "else",
  "yield",
  "await",
]);

/**
 * Splits JS/TS source into code and non-code spans. Template literals are text, except their `${…}`
 * expressions, which are code (nested templates included).
 */
function lex(src: string): Span[] {
  const spans: Span[] = [];
  const n = src.length;
  let i = 0, codeStart = 0;
  let depth = 0; // brace depth in code
  const templates: number[] = []; // brace depth at each open `${`
  let prevWord = "", prevChar = ""; // last significant code token: a word, or a punctuator
  const add = (kind: Span["kind"], start: number, end: number) => {
    if (end > start) spans.push({ kind, start, end });
  };
  const code = (end: number) => add("code", codeStart, end);
  /**
   * Template text from `from` (a backtick or the `}` closing an expression) to the closing backtick or
   * an opening `${`; returns where code resumes.
   */
  const templateText = (from: number): number => {
    let j = from + 1;
    while (j < n) {
      if (src[j] === "\\") j += 2;
      else if (src[j] === "`") {
        add("string", from, j + 1);
        prevWord = "", prevChar = "a";
        return j + 1;
      } else if (src[j] === "$" && src[j + 1] === "{") {
        add("string", from, j + 2);
        templates.push(depth);
        prevWord = "", prevChar = "(";
        return j + 2;
      } else j++;
    }
    add("string", from, n);
    return n;
  };
  if (src.startsWith("#!")) {
    i = src.indexOf("\n") < 0 ? n : src.indexOf("\n");
    add("comment", 0, i);
    codeStart = i;
  }
  while (i < n) {
    const c = src[i];
    if (c === "/" && src[i + 1] === "/") {
      code(i);
      const e = src.indexOf("\n", i) < 0 ? n : src.indexOf("\n", i);
      add("comment", i, e);
      i = codeStart = e;
    } else if (c === "/" && src[i + 1] === "*") {
      code(i);
      const e = src.indexOf("*/", i + 2) < 0 ? n : src.indexOf("*/", i + 2) + 2;
      add("comment", i, e);
      i = codeStart = e;
    } else if (c === "'" || c === '"') {
      code(i);
      let j = i + 1;
      while (j < n && src[j] !== c && src[j] !== "\n") j += src[j] === "\\" ? 2 : 1;
      add("string", i, Math.min(j + 1, n));
      i = codeStart = Math.min(j + 1, n);
      prevWord = "", prevChar = "a";
    } else if (c === "`") {
      code(i);
      i = codeStart = templateText(i);
    } else if (c === "}" && templates.length > 0 && depth === templates[templates.length - 1]) {
      code(i);
      templates.pop();
      i = codeStart = templateText(i);
    } else if (
      c === "/" && (prevWord ? BEFORE_REGEX.has(prevWord) : !")]}a".includes(prevChar) || prevChar === "")
    ) {
      let j = i + 1, inClass = false;
      while (j < n && src[j] !== "\n" && (inClass || src[j] !== "/")) {
        if (src[j] === "\\") j++;
        else if (src[j] === "[") inClass = true;
        else if (src[j] === "]") inClass = false;
        j++;
      }
      if (src[j] === "/") {
        j++;
        while (j < n && /[a-z]/.test(src[j])) j++;
        code(i);
        add("regex", i, j);
        i = codeStart = j;
        prevWord = "", prevChar = "a";
      } else {
        prevWord = "", prevChar = "/";
        i++;
      }
    } else if (/[\w$]/.test(c)) {
      let j = i + 1;
      while (j < n && /[\w$]/.test(src[j])) j++;
      prevWord = /^\d/.test(c) ? "" : src.slice(i, j);
      prevChar = "a";
      i = j;
    } else {
      if (c === "{") depth++;
      else if (c === "}") depth--;
      if (!/\s/.test(c)) prevWord = "", prevChar = c;
      i++;
    }
  }
  code(n);
  return spans;
}

/** The source with everything but code blanked out (newlines kept, so offsets and lines still match). */
function codeOnly(src: string, spans: Span[] = lex(src)): string {
  let out = "";
  for (const s of spans) {
    const text = src.slice(s.start, s.end);
    out += s.kind === "code" ? text : text.replace(/[^\n]/g, " ");
  }
  return out;
}

function lineOf(src: string, offset: number): number {
  let line = 1;
  for (let k = 0; k < offset; k++) if (src.charCodeAt(k) === 10) line++;
  return line;
}

/**
 * Uses of the Deno namespace in code: `Deno.` anywhere (also as a property: `globalThis.Deno.env`),
 * and a bare `Deno?.` / `Deno[`. A feature-detected `(globalThis as …).Deno?.…` is not one.
 */
function denoUses(src: string): { line: number; text: string }[] {
  const masked = codeOnly(src);
  const out: { line: number; text: string }[] = [];
  const re = /(?<![\w$])Deno(?![\w$])\s*\.(?!\.)|(?<!\.\s*)(?<![\w$])Deno(?![\w$])\s*(?:\?\.|\[)/g;
  for (const m of masked.matchAll(re)) {
    const line = lineOf(src, m.index);
    out.push({ line, text: src.split("\n")[line - 1].trim() });
  }
  return out;
}

/** Import specifiers (static, re-export and dynamic with a literal) found in code, with their lines. */
function importSpecifiers(src: string): { line: number; specifier: string }[] {
  const spans = lex(src);
  const masked = codeOnly(src, spans);
  const out: { line: number; specifier: string }[] = [];
  for (const s of spans) {
    if (s.kind !== "string" || (src[s.start] !== '"' && src[s.start] !== "'")) continue;
    const before = masked.slice(Math.max(0, s.start - 40), s.start);
    if (/(?:\bfrom|\bimport|\bimport\s*\(|\brequire\s*\()\s*$/.test(before)) {
      out.push({ line: lineOf(src, s.start), specifier: src.slice(s.start + 1, s.end - 1) });
    }
  }
  return out;
}

// ---------------------------------------------------------------- the module graph

type Dependency = {
  specifier: string;
  code?: { specifier?: string; span?: { start: { line: number } } };
  type?: { specifier?: string; span?: { start: { line: number } } };
};
type GraphModule = { specifier: string; kind?: string; error?: string; dependencies?: Dependency[] };

const NOT_WEB = /^(node|npm|jsr):/;

/**
 * Every way the graph of `entry` (a path, relative to `cwd`) is not web-standard, as
 * "module:line: what" lines: a `node:`, `npm:` or `jsr:` import, an import that is not relative,
 * a module that is not a local file, a `Deno` use in a local module.
 */
async function graphViolations(
  entry: string,
  cwd: string,
  extraArgs: string[] = [],
): Promise<string[]> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", ...extraArgs, entry],
    cwd,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, `deno info failed:\n${new TextDecoder().decode(out.stderr)}`);
  const graph = JSON.parse(new TextDecoder().decode(out.stdout)) as { modules: GraphModule[] };
  const name = (spec: string) => spec.startsWith("file:") ? relative(cwd, fileURLToPath(spec)) : spec;
  const problems: string[] = [];
  for (const m of graph.modules) {
    if (!m.specifier.startsWith("file:")) {
      problems.push(`${m.specifier}: in the graph (${m.kind ?? "?"} module), not a local file`);
      continue;
    }
    const where = name(m.specifier);
    if (m.error) problems.push(`${where}: ${m.error}`);
    for (const d of m.dependencies ?? []) {
      const resolved = d.code?.specifier ?? d.type?.specifier ?? "";
      const line = (d.code?.span ?? d.type?.span)?.start.line;
      const at = `${where}:${line === undefined ? "?" : line + 1}`;
      if (NOT_WEB.test(d.specifier) || NOT_WEB.test(resolved)) {
        problems.push(`${at}: imports ${d.specifier}`);
      } else if (!d.specifier.startsWith("./") && !d.specifier.startsWith("../")) {
        problems.push(`${at}: imports ${d.specifier}, not a relative path`);
      }
    }
    const src = await Deno.readTextFile(fileURLToPath(m.specifier));
    for (const u of denoUses(src)) problems.push(`${where}:${u.line}: uses Deno: ${u.text}`);
  }
  return problems;
}

// ---------------------------------------------------------------- tests

Deno.test("tokeniser: Deno in comments, strings, template text and regexes is not code; in code it is", () => {
  const src = [
    "#!/usr/bin/env -S deno run", // 1
    "// Deno.readFile in a line comment", // 2
    "/* Deno.exit()", // 3
    "   still a comment: Deno.env */", // 4
    "const a = \"Deno.args\", b = 'Deno.pid';", // 5
    "const t = `text Deno.x ${Deno.version.deno} and ${`nested ${Deno.pid}`} Deno.y`;", // 6
    "const r = /Deno\\.[a-z/]+/g, q = 4 / 2 / 1;", // 7
    "const env = (globalThis as { Deno?: { env: unknown } }).Deno?.env;", // 8
    "const f = await Deno.readFile(path);", // 9
    "type P = Deno.PermissionStatus;", // 10
    "x = Deno?.build; y = Deno['env'];", // 11
    "const s = `${{ a: { b: 1 } }.a} Deno.z`; Deno .exit();", // 12
    "if (ok) return /Deno./.test(s); const MyDeno = 1, DenoX = MyDeno.toString;", // 13
  ].join("\n");
  assert.deepEqual(denoUses(src).map((u) => u.line), [6, 6, 9, 10, 11, 11, 12]);
  const masked = codeOnly(src);
  assert.equal(masked.length, src.length);
  assert.equal(masked.split("\n").length, src.split("\n").length);
  assert.ok(masked.includes("q = 4 / 2 / 1"), "divisions are code, not regexes");
  assert.deepEqual(
    importSpecifiers(
      'import { a } from "./a.ts";\nexport * from "node:fs";\nconst m = await import("npm:x");\n' +
        'const s = "from node:y";\nimport "jsr:@std/z";\nconst t = `${from}u`;',
    ),
    [
      { line: 1, specifier: "./a.ts" },
      { line: 2, specifier: "node:fs" },
      { line: 3, specifier: "npm:x" },
      { line: 5, specifier: "jsr:@std/z" },
    ],
  );
});

Deno.test("graph check: a planted node: import, a bare import and Deno uses are named by module and line", async () => {
  const dir = await Deno.makeTempDir({ prefix: "web_standard_" });
  try {
    await Deno.writeTextFile(
      join(dir, "entry.ts"),
      'export * from "./a.ts";\nexport { b } from "./sub/b.ts";\n',
    );
    await Deno.writeTextFile(
      join(dir, "a.ts"),
      '// Deno.readFile in a comment is fine\nimport { gzipSync } from "node:zlib";\n' +
        "export const a = (p: string) => Deno.readFile(p);\nexport const z = gzipSync;\n",
    );
    await Deno.mkdir(join(dir, "sub"));
    await Deno.writeTextFile(
      join(dir, "sub", "b.ts"),
      'import { join } from "node:path";\n/** Deno.env */\nexport const b = `${Deno.pid}`;\nexport { join };\n',
    );
    const problems = await graphViolations("entry.ts", dir, ["--no-config", "--no-lock"]);
    const has = (re: RegExp) =>
      assert.ok(problems.some((p) => re.test(p)), `${re} in:\n${problems.join("\n")}`);
    has(/^a\.ts:2: imports node:zlib$/);
    has(/^a\.ts:3: uses Deno: export const a/);
    has(/^sub\/b\.ts:1: imports node:path$/);
    has(/^sub\/b\.ts:3: uses Deno: export const b/);
    has(/^node:zlib: in the graph/);
    assert.ok(!problems.some((p) => /a\.ts:1:|b\.ts:2:/.test(p)), "comments are not code");
    assert.equal(problems.filter((p) => /uses Deno/.test(p)).length, 2);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("mod.ts is web-standard: no node:/npm:/jsr: import, every import relative, no Deno use", async () => {
  const problems = await graphViolations("mod.ts", root);
  assert.deepEqual(problems, [], `mod.ts's graph is not web-standard:\n${problems.join("\n")}`);
});

Deno.test({
  name: "deno task bundle: dist/supcon.js is a browser ES module with mod.ts's exports, and typed",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const config = JSON.parse(await Deno.readTextFile(join(root, "deno.json")));
    assert.match(config.tasks.bundle, /--platform browser/);
    const run = await new Deno.Command(Deno.execPath(), {
      args: ["task", "bundle"],
      cwd: root,
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const log = new TextDecoder().decode(run.stdout) + new TextDecoder().decode(run.stderr);
    assert.equal(run.code, 0, `deno task bundle failed:\n${log}`);
    const js = join(root, "dist", "supcon.js");
    const src = await Deno.readTextFile(js);
    const imports = importSpecifiers(src);
    assert.deepEqual(imports.filter((s) => NOT_WEB.test(s.specifier)), [], "no node:/npm:/jsr: import");
    assert.deepEqual(imports, [], "one self-contained file");
    assert.deepEqual(denoUses(src), [], "no Deno use");

    const built = await import(pathToFileURL(js).href);
    const mod = await import("../mod.ts");
    assert.deepEqual(Object.keys(built).sort(), Object.keys(mod).sort());
    assert.equal(typeof built.initDevice, "function");

    // Types: dist/supcon.d.ts re-exports mod.ts's; the bundle names it (@ts-self-types) for Deno, and
    // tsc finds it beside the .js. Type-only exports and literal types show they are really there.
    assert.match(src.split("\n")[0], /@ts-self-types="\.\/supcon\.d\.ts"/);
    const dir = await Deno.makeTempDir({ prefix: "bundle_types_" });
    try {
      await Deno.writeTextFile(
        join(dir, "user.ts"),
        `import { type DType, initDevice, tensor, type TensorOptions } from ${
          JSON.stringify(pathToFileURL(js).href)
        };
export async function f(): Promise<number> {
  await initDevice();
  const dtype: DType = "i32";
  // @ts-expect-error not a DType (a .js bundle without its .d.ts has no type exports at all)
  const bad: DType = "f64";
  const opts: TensorOptions = { dtype };
  return (await tensor([1], [1], opts).item()) + bad.length;
}
`,
      );
      const check = await new Deno.Command(Deno.execPath(), {
        args: ["check", "--no-config", "--no-lock", "user.ts"],
        cwd: dir,
        env: { NO_COLOR: "1" },
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(
        check.code,
        0,
        `the bundle's types do not check:\n${new TextDecoder().decode(check.stderr)}`,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
