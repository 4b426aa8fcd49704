/**
 * What a real `parley serve` publishes from client-js/: the demo at `/`, the shipped modules at
 * `/client/`, and nothing else of the folder (no node_modules, tests or tooling).
 *
 * Run: cd client-js && node --test test-e2e/   (skipped when the venv is missing)
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { ParleyServer, REPO, findPython } from './harness.js';

const python = findPython();
const skip =
  python === null
    ? 'no Python for parley serve (create .venv with scripts/test, or set PARLEY_PYTHON)'
    : false;

/** @type {string[]} the modules the package ships */
const SHIPPED = JSON.parse(readFileSync(join(REPO, 'client-js', 'package.json'), 'utf8')).files;

describe('the files parley serve publishes from client-js/', { skip }, () => {
  /** @type {ParleyServer} */
  let server;

  before(async () => {
    server = new ParleyServer({ python: /** @type {string} */ (python) });
    await server.start();
  });

  after(async () => {
    await server?.dispose();
  });

  /** @param {string} path */
  const get = (path) => fetch(server.origin + path);

  test('the demo page and every shipped module are served', async () => {
    const page = await get('/');
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<parley-assistant/);
    assert.ok(SHIPPED.includes('widget.js') && SHIPPED.includes('client.js'));
    for (const file of SHIPPED) {
      const response = await get(`/client/${file}`);
      assert.equal(response.status, 200, file);
      assert.match(String(response.headers.get('content-type')), /javascript/, file);
    }
    assert.equal((await get('/client/demo/index.html')).status, 200);
    // The widget is one self-contained file: no import of another module to fetch.
    const widget = await (await get('/client/widget.js')).text();
    assert.match(widget, /customElements\.define\("parley-assistant"/);
    assert.doesNotMatch(widget, /^import\s|\bimport\s*\(/m);
  });

  test('node_modules, tests, tooling and paths escaping the list are not', async () => {
    for (const path of [
      '/client/package.json',
      '/client/package-lock.json',
      '/client/tsconfig.json',
      '/client/README.md',
      '/client/node_modules/playwright-core/package.json',
      '/client/test/client.test.js',
      '/client/test-browser/widget.test.js',
      '/client/test-e2e/harness.js',
      '/client/test-support/chromium.js',
      // The widget's sources and build tool: the bundle at /client/widget.js is what ships.
      '/client/widget/element.js',
      '/client/widget/markdown.js',
      '/client/tools/build-widget.js',
      '/client/.prettierrc.json',
      '/client/demo/../package.json',
      '/client/demo/%2e%2e/package.json',
      '/client/widget.js/../package.json',
      '/client/',
    ]) {
      assert.equal((await get(path)).status, 404, path);
    }
  });
});
