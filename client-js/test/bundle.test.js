/**
 * widget.js, the one file host pages load, is committed; it must be exactly what its sources
 * and the locked libraries build to. Rebuilt in memory with esbuild, compared byte for byte.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { BUNDLE, bundleText } from '../tools/build-widget.js';

test('the committed widget.js is fresh (else: npm run build, and commit it)', async () => {
  const committed = readFileSync(new URL(`../${BUNDLE}`, import.meta.url), 'utf8');
  const built = await bundleText();
  assert.ok(
    committed === built,
    `${BUNDLE} differs from what its sources build to (${committed.length} vs ${built.length} characters): run npm run build in client-js/ and commit the result`,
  );
});
