/**
 * Page tools on the demo page against a real `parley serve`, in headless Chromium: the page
 * registers `open_record` and `set_filter`, the scripted model calls them, and the tab that
 * asked is the one whose table changes.
 *
 * Run: cd client-js && node --test test-e2e/page-tools.test.js   (skipped without Chromium or
 * the venv)
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { DemoTab, WAIT_MS, demoRequirements, serveDemo, uniqueUser } from './harness.js';

const { chromium, python, skip } = await demoRequirements();

/**
 * Wait for the newest assistant message to be complete and return its text.
 *
 * @param {DemoTab} tab
 * @param {string} including text the answer must contain
 */
async function answer(tab, including) {
  await tab.page.waitForFunction(
    (/** @type {string} */ text) => {
      const root = document.querySelector('parley-assistant')?.shadowRoot;
      const answers = root?.querySelectorAll('[data-testid="message-assistant"][data-status="complete"]');
      const last = answers?.[answers.length - 1];
      return (last?.querySelector('.bubble')?.textContent ?? '').includes(text);
    },
    including,
    { timeout: WAIT_MS },
  );
}

/**
 * The purchase order numbers the table shows, and the selected one.
 *
 * @param {DemoTab} tab
 * @returns {Promise<{rows: string[], selected: string[], overdue: boolean[], filter: string | null}>}
 */
function table(tab) {
  return tab.page.evaluate(() => {
    const rows = [...document.querySelectorAll('#orders tr[data-po]')];
    return {
      rows: rows.map((row) => /** @type {HTMLElement} */ (row).dataset.po ?? ''),
      selected: rows
        .filter((row) => row.getAttribute('aria-selected') === 'true')
        .map((row) => /** @type {HTMLElement} */ (row).dataset.po ?? ''),
      overdue: rows.map((row) => row.querySelector('td.overdue') !== null),
      filter:
        /** @type {HTMLElement | null} */ (document.querySelector('.tabs button[aria-pressed="true"]'))
          ?.dataset.filter ?? null,
    };
  });
}

describe('page tools on the demo page against parley serve', { skip }, () => {
  const demo = serveDemo({ python: /** @type {string} */ (python), chromium });

  test('"open PO-1003" selects and scrolls to the row; "show only overdue orders" sets the filter', async () => {
    const context = await demo.browser.newContext({ viewport: { width: 1280, height: 800 } });
    const tab = await DemoTab.open(context, demo.server.origin, { user: uniqueUser('pages') });

    await tab.type('open PO-1003');
    await tab.page.locator('#orders tr[data-po="PO-1003"][aria-selected="true"]').waitFor({ timeout: WAIT_MS });
    await answer(tab, 'I opened PO-1003 for you');
    assert.deepEqual((await table(tab)).selected, ['PO-1003']);
    await tab.screenshot('page-tools-01-open-record', { fullPage: true });

    await tab.type('show only overdue orders');
    await tab.page.locator('.tabs button[data-filter="overdue"][aria-pressed="true"]').waitFor({ timeout: WAIT_MS });
    await answer(tab, 'The table now shows only overdue orders');
    const shown = await table(tab);
    assert.equal(shown.filter, 'overdue');
    assert.ok(shown.rows.length > 0, 'the demo books have overdue orders');
    assert.ok(shown.overdue.every(Boolean), `only overdue rows: ${shown.rows.join(', ')}`);
    await tab.screenshot('page-tools-02-overdue-filter', { fullPage: true });

    assert.deepEqual(tab.problems, []);
    await context.close();
  });

  test('the page tool runs in the tab that asked, not in the user\'s other tab', async () => {
    const context = await demo.browser.newContext({ viewport: { width: 1280, height: 800 } });
    const user = { user: uniqueUser('two-tabs') };
    const watching = await DemoTab.open(context, demo.server.origin, user);
    const asking = await DemoTab.open(context, demo.server.origin, user);

    await asking.type('open PO-1002');
    await answer(asking, 'I opened PO-1002 for you');
    // The other tab mirrors the conversation but its table stays as it was.
    await answer(watching, 'I opened PO-1002 for you');
    assert.deepEqual((await table(asking)).selected, ['PO-1002']);
    assert.deepEqual((await table(watching)).selected, []);
    await asking.screenshot('page-tools-03-asking-tab', { fullPage: true });

    assert.deepEqual(asking.problems, []);
    assert.deepEqual(watching.problems, []);
    await context.close();
  });
});
