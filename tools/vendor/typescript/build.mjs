// Builds vmctl/worker/vendor/sucrase.js: sucrase's transform, patched to blank types instead of
// deleting them, bundled as one function expression the worker evaluates in its own context.
// Dev-time only: `npm ci && node build.mjs` (README.md). The output is committed.

import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

import * as esbuild from "esbuild";

const here = dirname(fileURLToPath(import.meta.url));
const sucraseRoot = join(here, "node_modules", "sucrase");
const output = join(here, "..", "..", "..", "vmctl", "worker", "vendor", "sucrase.js");
const patchFile = join(here, "patches", "sucrase-3.35.1-blank-space.patch");

const pkg = JSON.parse(readFileSync(join(sucraseRoot, "package.json"), "utf8"));
if (pkg.version !== "3.35.1") {
  throw new Error(`expected sucrase 3.35.1, found ${pkg.version}: update the patch and README`);
}

// Only the TypeScript transform on ES modules runs in the worker: the parts of sucrase that serve
// other transforms, source maps and option checking are replaced by stubs that throw if reached.
const STUBBED = {
  "dist/esm/computeSourceMap.js": "export default function computeSourceMap() { unused(); }",
  "dist/esm/CJSImportProcessor.js": "export default class CJSImportProcessor { constructor() { unused(); } }",
  "dist/esm/transformers/CJSImportTransformer.js": "export default class CJSImportTransformer { constructor() { unused(); } }",
  "dist/esm/transformers/FlowTransformer.js": "export default class FlowTransformer { constructor() { unused(); } }",
  "dist/esm/transformers/JestHoistTransformer.js": "export default class JestHoistTransformer { constructor() { unused(); } }",
  "dist/esm/transformers/ReactDisplayNameTransformer.js": "export default class ReactDisplayNameTransformer { constructor() { unused(); } }",
  "dist/esm/transformers/ReactHotLoaderTransformer.js": "export default class ReactHotLoaderTransformer { constructor() { unused(); } }",
  "dist/esm/util/formatTokens.js": "export default function formatTokens() { unused(); }",
  "dist/esm/Options.js": "export function validateOptions() {}",
};
const STUB_PRELUDE = 'function unused() { throw new Error("not in the vendored build"); }\n';

// A unified diff applied in memory, hunk by hunk: each hunk's old text must occur exactly once.
function parsePatch(text) {
  const files = new Map();
  let hunks = null;
  let hunk = null;
  for (const line of text.split("\n")) {
    if (line.startsWith("+++ ")) {
      hunks = [];
      files.set(line.slice(4).trim().replace(/^b\//, ""), hunks);
      hunk = null;
    } else if (line.startsWith("--- ") || line.startsWith("diff ")) {
      hunk = null;
    } else if (line.startsWith("@@")) {
      hunk = { old: [], new: [] };
      hunks.push(hunk);
    } else if (hunk !== null && line !== "\\ No newline at end of file") {
      const body = line.slice(1);
      if (line[0] !== "+") hunk.old.push(body);
      if (line[0] !== "-") hunk.new.push(body);
    }
  }
  return files;
}

function applyHunks(path, source, hunks) {
  let patched = source;
  for (const hunk of hunks) {
    const before = hunk.old.join("\n");
    const count = patched.split(before).length - 1;
    if (count !== 1) {
      throw new Error(`patch hunk for ${path} matches ${count} times, expected once`);
    }
    patched = patched.replace(before, () => hunk.new.join("\n"));
  }
  return patched;
}

const patches = parsePatch(readFileSync(patchFile, "utf8"));
const applied = new Set();

const sucrasePlugin = {
  name: "vmctl-sucrase",
  setup(build) {
    build.onLoad({ filter: /\.js$/ }, (args) => {
      const path = relative(sucraseRoot, args.path).split("\\").join("/");
      if (path in STUBBED) {
        return { contents: STUB_PRELUDE + STUBBED[path], loader: "js" };
      }
      if (patches.has(path)) {
        applied.add(path);
        const source = readFileSync(args.path, "utf8");
        return { contents: applyHunks(path, source, patches.get(path)), loader: "js" };
      }
      return undefined;
    });
  },
};

const result = await esbuild.build({
  stdin: {
    contents: 'export { transform } from "sucrase/dist/esm/index.js";',
    resolveDir: here,
    loader: "js",
  },
  bundle: true,
  write: false,
  format: "esm",
  platform: "neutral",
  mainFields: ["module", "main"],
  target: "es2022",
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: "none",
  charset: "ascii",
  plugins: [sucrasePlugin],
  metafile: true,
});

for (const path of patches.keys()) {
  if (!applied.has(path)) throw new Error(`patch for ${path} was not applied: not in the bundle`);
}

// ANALYZE=1 node build.mjs: what each module adds to the bundle.
if (process.env.ANALYZE) console.log(await esbuild.analyzeMetafile(result.metafile));
const body = result.outputFiles[0].text;
const exported = /export\s*\{\s*transform\s*\};?\s*$/;
if (!exported.test(body)) throw new Error("the bundle does not end with `export { transform }`");
const license = "MIT";
const header =
  `// sucrase ${pkg.version} (https://github.com/alangpierce/sucrase), ${license} license: ` +
  "vmctl/worker/vendor/LICENSES.sucrase.md.\n" +
  "// Generated by tools/vendor/typescript/build.mjs with patches/" +
  "sucrase-3.35.1-blank-space.patch; do not edit.\n" +
  "// One function expression: call it to get { transform } (no globals are touched).\n";
const text =
  header +
  '(function () {\n"use strict";\n' +
  body.replace(exported, "") +
  "\nreturn { transform };\n})\n";
writeFileSync(output, text);
console.log(`wrote ${relative(process.cwd(), output)}: ${text.length} bytes`);
