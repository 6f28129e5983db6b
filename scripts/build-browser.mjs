// Bundles the browser entry (src/browser.ts) into dist/browser/wgkv.js, an ES
// module holding the engine, the WebGPU backend and the tokenizer and
// template libraries, and the `wgkv web` page's script (src/web/webPage.ts)
// into dist/browser/web-page.js, which imports the library from ./wgkv.js
// rather than holding a second copy. A `node:*` import anywhere below the
// entries fails the build (esbuild cannot resolve it for the browser).
//
//   node scripts/build-browser.mjs
import { build } from "esbuild";

const common = { bundle: true, format: "esm", platform: "browser", target: "es2022", logLevel: "warning", legalComments: "inline" };

await build({ ...common, entryPoints: ["src/browser.ts"], outfile: "dist/browser/wgkv.js" });

/** The page's `import ... from "../browser.js"` becomes the library bundle beside it. */
const libraryBeside = {
  name: "library-beside",
  setup(b) {
    b.onResolve({ filter: /\/browser\.js$/ }, () => ({ path: "./wgkv.js", external: true }));
  },
};
await build({ ...common, entryPoints: ["src/web/webPage.ts"], outfile: "dist/browser/web-page.js", plugins: [libraryBeside] });
