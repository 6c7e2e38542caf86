// The web app's build: Preact + TypeScript, bundled by Vite into ../kizuna/web/dist, which the
// API serves (kizuna/web/static.py) and the Python package ships, so `pip install` needs no Node.
import preact from "@preact/preset-vite";
import { defineConfig } from "vite";
import { thirdPartyLicences } from "./build/licences.ts";

export default defineConfig({
  plugins: [preact(), thirdPartyLicences()],
  // Hashed asset names under /assets/: the API serves them immutable.
  base: "/",
  build: {
    outDir: "../kizuna/web/dist",
    emptyOutDir: true,
    // No data: URLs for scripts or WASM: the page's CSP allows code from 'self' only.
    assetsInlineLimit: 0,
    target: "es2022",
    sourcemap: false,
    reportCompressedSize: false,
    modulePreload: { polyfill: false },
    // The importer's rules (generated JSON, loaded by the Add records page only) are a ~790 KB
    // chunk, 60 KB gzipped; the budget that matters is the gzipped total (benchmarks/web.py).
    chunkSizeWarningLimit: 1024,
  },
  // The decryption workers (src/workers) are ES modules: they import the core and umbral-pre's
  // WASM (top-level await), which a classic worker cannot.
  worker: { format: "es" },
  // umbral-pre's WASM is loaded by its own glue; the dev server must not pre-bundle it.
  optimizeDeps: { exclude: ["@nucypher/umbral-pre"] },
  server: {
    host: "127.0.0.1",
    // `npm run dev` beside a running `kizuna up`: the API on :8000 answers the page's calls.
    proxy: Object.fromEntries(
      ["/auth", "/patient", "/patients", "/provider", "/wallet", "/auditor", "/care", "/content", "/health", "/version", "/status"]
        .map((p) => [p, "http://127.0.0.1:8000"]),
    ),
  },
});
