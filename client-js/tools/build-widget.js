/**
 * Builds widget.js, the one file a host page loads (`<script type="module"
 * src="…/client/widget.js">`), from the sources in widget/ and the libraries they use
 * (markdown-it, DOMPurify, Chart.js), with esbuild.
 *
 * The bundle is committed, so the server needs no build step; test/bundle.test.js rebuilds it in
 * memory and fails when the committed file differs from what its sources give.
 *
 * Run: npm run build   (or node tools/build-widget.js)
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { build } from 'esbuild';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const ENTRY = 'widget/element.js';
export const BUNDLE = 'widget.js';

const BANNER = `/* <parley-assistant>: the Parley widget, one file. Built by client-js/tools/build-widget.js
 * from client-js/widget/ with markdown-it, DOMPurify and Chart.js (licences at the end).
 * Do not edit: change the sources and run \`npm run build\` in client-js/. */`;

/**
 * The bundle's text, as esbuild makes it from the current sources.
 *
 * @returns {Promise<string>}
 */
export async function bundleText() {
  const result = await build({
    absWorkingDir: ROOT,
    entryPoints: [ENTRY],
    bundle: true,
    format: 'esm',
    target: 'es2022',
    platform: 'browser',
    minify: true,
    legalComments: 'eof',
    charset: 'utf8',
    banner: { js: BANNER },
    write: false,
    logLevel: 'silent',
  });
  return result.outputFiles[0].text;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const text = await bundleText();
  writeFileSync(new URL(`../${BUNDLE}`, import.meta.url), text);
  console.log(`${BUNDLE}: ${(text.length / 1024).toFixed(1)} KiB`);
}
