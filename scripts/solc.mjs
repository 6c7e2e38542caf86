// A `solc`-compatible command around npm's solc (wasm), for tools that expect a native compiler
// binary (py-solc-x, forge). It supports exactly what they use:
//   solc --version
//   solc --standard-json [--base-path P] [--include-path P]... [--allow-paths P,...] < input.json
// Imports are resolved against the base path, the include paths, the working directory and
// node_modules. Only the compiler's JSON goes to stdout.
import { createRequire } from "node:module";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const here = path.dirname(fileURLToPath(import.meta.url));
const projectRoot = path.resolve(here, "..");
const solc = require(require.resolve("solc", { paths: [projectRoot] }));

const args = process.argv.slice(2);
if (args.includes("--version") || args.includes("-v")) {
  process.stdout.write(`solc, the solidity compiler commandline interface\nVersion: ${solc.version()}\n`);
  process.exit(0);
}
if (!args.includes("--standard-json")) {
  process.stderr.write("this solc wrapper supports only --version and --standard-json\n");
  process.exit(2);
}

const roots = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--base-path" || args[i] === "--include-path") roots.push(args[++i]);
  else if (args[i] === "--allow-paths") roots.push(...args[++i].split(","));
}
roots.push(process.cwd(), path.join(process.cwd(), "node_modules"), projectRoot,
  path.join(projectRoot, "node_modules"));

function findImports(importPath) {
  const candidates = path.isAbsolute(importPath) ? [importPath] : roots.map((r) => path.resolve(r, importPath));
  for (const candidate of candidates) {
    if (fs.existsSync(candidate) && fs.statSync(candidate).isFile()) {
      return { contents: fs.readFileSync(candidate, "utf8") };
    }
  }
  return { error: `File not found: ${importPath}` };
}

const input = fs.readFileSync(0, "utf8");
process.stdout.write(solc.compile(input, { import: findImports }));
process.stdout.write("\n");
