// Bundles the studio (one IIFE script and one stylesheet) into web/static/studio/.
// The properties panel's components must share its preact copy: two copies break hooks.
import { readFile } from 'node:fs/promises';

import { build } from 'esbuild';

// Qorgau's Content Security Policy refuses inline style attributes. The properties panel
// builds its two containers, and dmn-js its bpmn.io logo (which stays, as its licence
// asks), with style="..." in HTML strings; those attributes are dropped here and the same
// rules live in src/studio.css, so the browser reports no violation.
const INLINE_STYLES = {
  'bpmn-js-properties-panel/dist/index.esm.js': [
    ' style="height: 100%"',
    ' style="flex: none; height: auto"',
  ],
  'dmn-js-shared/lib/util/PoweredByUtil.js': [
    ' style="vertical-align:middle"',
    "'style=\"position: absolute; bottom: 15px; right: 15px; z-index: 100;\">'",
  ],
};
const REPLACEMENT = {
  "'style=\"position: absolute; bottom: 15px; right: 15px; z-index: 100;\">'": "'>'",
};

const withoutInlineStyles = {
  name: 'without-inline-styles',
  setup(esbuild) {
    const filter = /(bpmn-js-properties-panel[\\/]dist[\\/]index\.esm|dmn-js-shared[\\/]lib[\\/]util[\\/]PoweredByUtil)\.js$/;
    esbuild.onLoad({ filter }, async (args) => {
      let source = await readFile(args.path, 'utf8');
      const path = args.path.replaceAll('\\', '/');
      const [file, attributes] = Object.entries(INLINE_STYLES).find(([f]) => path.endsWith(f));
      for (const attribute of attributes) {
        if (!source.includes(attribute)) {
          throw new Error(`${file} changed: ${attribute} not found; re-check the CSP patch`);
        }
        source = source.replaceAll(attribute, REPLACEMENT[attribute] || '');
      }
      return { contents: source, loader: 'js' };
    });
  },
};

await build({
  entryPoints: { studio: 'src/index.js' },
  bundle: true,
  format: 'iife',
  minify: true,
  sourcemap: false,
  target: ['es2020'],
  outdir: '../static/studio',
  jsx: 'automatic',
  jsxImportSource: '@bpmn-io/properties-panel/preact',
  loader: { '.eot': 'file', '.svg': 'file', '.woff': 'file', '.woff2': 'file', '.ttf': 'file' },
  plugins: [withoutInlineStyles],
  legalComments: 'none',
  logLevel: 'warning',
});
