// Bundles the front end into the files the Python package ships (rtvoice_widget/static/):
//
// - widget.js: js/widget.js and everything it imports, as ONE ES module (what the page imports).
//   The AudioWorklet processors and the audio-link worker (js/worklets/) must be started from a
//   URL, so each is bundled on its own into a script and imported as text (`?source`), which
//   js/lib/audio-graph.js and js/lib/link.js load from Blob URLs. widget.css is imported as
//   text too, and injected by widget.js: one file carries the whole front end.
// - loader.js: the small `_esm` anywidget keeps in the widget state (and so in a saved
//   notebook). It asks the kernel for widget.js by a custom message (never saved) and imports it.
//
// `npm run build` (or `node build.mjs [outdir]`); tests/test_packaging.py rebuilds into a
// temporary folder and checks the committed files are the same bytes.

import * as esbuild from "esbuild";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const HERE = dirname(fileURLToPath(import.meta.url));
const OUT = resolve(process.argv[2] || resolve(HERE, "..", "rtvoice_widget", "static"));

const COMMON = { absWorkingDir: HERE, bundle: true, format: "esm", target: "es2020", charset: "utf8", legalComments: "none", logLevel: "warning" };

/** `import text from "./worklets/x.js?source"`: that file bundled on its own, as a string. */
const sourcePlugin = {
  name: "source",
  setup(build) {
    // Paths relative to js/, so the bundle is the same bytes in any checkout.
    build.onResolve({ filter: /\?source$/ }, (args) => ({
      path: relative(HERE, resolve(args.resolveDir, args.path.slice(0, -"?source".length))),
      namespace: "source",
    }));
    build.onLoad({ filter: /.*/, namespace: "source" }, async (args) => {
      const result = await esbuild.build({ ...COMMON, entryPoints: [resolve(HERE, args.path)], write: false });
      return { contents: result.outputFiles[0].text, loader: "text" };
    });
  },
};

async function bundle(entry, name) {
  const result = await esbuild.build({
    ...COMMON,
    entryPoints: [resolve(HERE, entry)],
    write: false,
    loader: { ".css": "text" },
    plugins: [sourcePlugin],
  });
  mkdirSync(OUT, { recursive: true });
  writeFileSync(resolve(OUT, name), result.outputFiles[0].text);
}

await bundle("widget.js", "widget.js");
await bundle("loader.js", "loader.js");
