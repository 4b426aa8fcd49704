/**
 * A view of a tool result survives a reload: the page asks for the receivables aging against a
 * real `parley serve`, in headless Chromium, then reloads. The reloaded widget has no resume
 * point, so it rebuilds from the `ready` snapshot alone, which must bring back the tool line,
 * its chart and the CSV button, once.
 *
 * Run: cd client-js && node --test test-e2e/views.test.js   (skipped without Chromium or venv)
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { DemoTab, WAIT_MS, demoRequirements, serveDemo, uniqueUser } from './harness.js';

const { chromium, python, skip } = await demoRequirements();

/**
 * What the widget shows of the conversation, in order: item kinds and, for views, their kind.
 *
 * @param {DemoTab} tab
 * @returns {Promise<string[]>}
 */
function transcript(tab) {
  return tab.page.evaluate(() => {
    const root = /** @type {ShadowRoot} */ (document.querySelector('parley-assistant')?.shadowRoot);
    const selector =
      '[data-testid="message-user"], [data-testid="tool-line"], [data-testid="view"], ' +
      '[data-testid="export"], [data-testid="message-assistant"]';
    return [...root.querySelectorAll(selector)].map((node) => {
      const element = /** @type {HTMLElement} */ (node);
      const kind = element.dataset.kind ? `:${element.dataset.kind}` : '';
      return `${element.dataset.testid}${kind}`;
    });
  });
}

describe('views of tool results in the widget against parley serve', { skip }, () => {
  const demo = serveDemo({ python: /** @type {string} */ (python), chromium });

  test('the aging chart is still there after a reload, with its CSV button, once', async () => {
    const context = await demo.browser.newContext({ viewport: { width: 1280, height: 800 } });
    const tab = await DemoTab.open(context, demo.server.origin, { user: uniqueUser('viewer') });
    await tab.type('show AR aging');
    const answer = tab.testid('message-assistant');
    await answer.and(tab.page.locator('[data-status="complete"]')).waitFor({ timeout: WAIT_MS });
    await tab.testid('chart').waitFor({ timeout: WAIT_MS });
    const live = await transcript(tab);
    assert.deepEqual(live, [
      'message-user',
      'tool-line',
      'view:chart',
      'export',
      'message-assistant',
    ]);
    const line = await tab.testid('tool-line').textContent();

    await tab.page.reload();
    await tab.waitConnected();
    await tab.testid('launcher').click();
    await tab.testid('panel').waitFor();
    await tab.testid('chart').waitFor({ timeout: WAIT_MS });
    await tab.screenshot('views-01-after-reload');
    assert.deepEqual(await transcript(tab), live);
    assert.equal(await tab.testid('tool-line').textContent(), line);
    assert.deepEqual(tab.problems, []);
    await context.close();
  });
});
