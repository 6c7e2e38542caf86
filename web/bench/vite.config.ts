// The benchmark's own page (benchmarks/web.py, tests/web/test_web_vectors.py): the real crypto
// core, library loader, Timeline and Charts behind window.kizunaBench, built into a temp folder
// given by KIZUNA_BENCH_OUT — never into kizuna/web/dist (the committed build) nor into git.
//   KIZUNA_BENCH_OUT=/tmp/x npx vite build --config bench/vite.config.ts   (from web/)
import preact from "@preact/preset-vite";
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

const out = process.env.KIZUNA_BENCH_OUT;
if (!out) throw new Error("KIZUNA_BENCH_OUT must name a temporary folder for the benchmark's build");

export default defineConfig({
  root: fileURLToPath(new URL(".", import.meta.url)),
  plugins: [preact()],
  base: "/",
  // decrypt.worker.ts imports the core (and umbral-pre's WASM) as ES modules.
  worker: { format: "es", plugins: () => [preact()] },
  logLevel: "warn",
  build: {
    outDir: out,
    emptyOutDir: true,
    // The same output rules as the app's build (web/vite.config.ts): served by
    // kizuna/web/static.py under the page's strict CSP, so no data: URLs for code.
    assetsInlineLimit: 0,
    target: "es2022",
    sourcemap: false,
    // KIZUNA_BENCH_MINIFY=0: readable function names in a CPU profile (benchmarks/web.py --profile).
    minify: process.env.KIZUNA_BENCH_MINIFY !== "0",
    reportCompressedSize: false,
    modulePreload: { polyfill: false },
  },
});
