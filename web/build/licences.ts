// A Vite plugin that writes assets/third-party-licences.txt into the build: every npm package
// whose code is in the shipped bundles (found from the bundles' module ids, so the list is what
// is shipped, not what package.json says), with its version and licence. tests/web/
// test_web_build.py checks that THIRD_PARTY_LICENSES.md names each of them.

import { readFileSync } from "node:fs";
import type { Plugin } from "vite";

const PACKAGE = /[\\/]node_modules[\\/]((?:@[^\\/]+[\\/])?[^\\/]+)[\\/]/g;

type Found = { version: string; license: string };

function packageOf(id: string): { name: string; root: string } | null {
  let last: RegExpExecArray | null = null;
  for (const match of id.matchAll(PACKAGE)) last = match;
  if (!last || last.index === undefined) return null;
  const name = last[1]!.replace(/\\/g, "/");
  return { name, root: id.slice(0, last.index + last[0].length) };
}

export function thirdPartyLicences(): Plugin {
  return {
    name: "kizuna-third-party-licences",
    apply: "build",
    generateBundle(_options, bundle) {
      const found = new Map<string, Found>();
      for (const file of Object.values(bundle)) {
        if (file.type !== "chunk") continue;
        for (const id of Object.keys(file.modules)) {
          const pkg = packageOf(id);
          if (!pkg || found.has(pkg.name)) continue;
          const meta = JSON.parse(readFileSync(`${pkg.root}package.json`, "utf8")) as { version?: string; license?: string };
          found.set(pkg.name, { version: meta.version ?? "?", license: meta.license ?? "UNKNOWN" });
        }
      }
      const lines = [...found.entries()]
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([name, f]) => `${name} ${f.version} ${f.license}`);
      const text = [
        "Third-party packages whose code is in this build of the Kizuna web app",
        "(name, version, licence; see THIRD_PARTY_LICENSES.md in the repository):",
        "",
        ...lines,
        "",
      ].join("\n");
      this.emitFile({ type: "asset", fileName: "assets/third-party-licences.txt", source: text });
    },
  };
}
