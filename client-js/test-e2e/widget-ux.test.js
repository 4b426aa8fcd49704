/**
 * The widget's conversations list, "talk to a person" and German against a real `parley serve`,
 * in headless Chromium: what one tab does shows in the user's other tab through the server's
 * frames, and a tenant whose token names a German locale gets a German widget.
 *
 * Run: cd client-js && node --test test-e2e/widget-ux.test.js   (skipped without Chromium or venv)
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { DemoTab, WAIT_MS, demoRequirements, serveDemo, uniqueUser } from './harness.js';

const { chromium, python, skip } = await demoRequirements();

/**
 * Send a message and wait until its answer is complete.
 *
 * @param {DemoTab} tab
 * @param {string} text
 */
async function ask(tab, text) {
  const before = await tab.testid('message-assistant').count();
  await tab.type(text);
  await tab.page.waitForFunction(
    (/** @type {number} */ count) => {
      const root = document.querySelector('parley-assistant')?.shadowRoot;
      const answers = root?.querySelectorAll('[data-testid="message-assistant"]') ?? [];
      const last = /** @type {HTMLElement | undefined} */ (answers[answers.length - 1]);
      return answers.length > count && last?.dataset.status === 'complete';
    },
    before,
    { timeout: WAIT_MS },
  );
}

describe('conversations, a person and German in the widget against parley serve', { skip }, () => {
  const demo = serveDemo({ python: /** @type {string} */ (python), chromium });

  test('switching and renaming from the list; the rename shows in the other tab', async () => {
    const identity = { user: uniqueUser('lister') };
    const context = await demo.browser.newContext({ viewport: { width: 1280, height: 800 } });
    const first = await DemoTab.open(context, demo.server.origin, identity);
    await ask(first, '[say] the first conversation');
    await first.testid('new-conversation').click();
    // The new conversation is empty: wait for that, or `ask` counts the old one's answers.
    await first.testid('message-user').waitFor({ state: 'detached', timeout: WAIT_MS });
    await ask(first, '[say] the second conversation');

    // A tab opened now gets the newest conversation's messages with its snapshot.
    const second = await DemoTab.open(context, demo.server.origin, identity);
    await second.testid('message-user').filter({ hasText: 'the second conversation' }).waitFor();
    await second.testid('conversations').click();
    const items = second.testid('conversation-item');
    await items.nth(1).waitFor();
    assert.equal(await items.count(), 2);
    assert.equal(await items.first().getAttribute('aria-current'), 'true');

    // The older one: its messages come from the REST history.
    await items.nth(1).click();
    await second.testid('message-user').filter({ hasText: 'the first conversation' }).waitFor();
    assert.equal(await second.testid('message-user').count(), 1);
    await second.testid('message-assistant').waitFor();

    // Rename it here; the first tab's list follows.
    await second.testid('conversations').click();
    await second.testid('conversation-rename').nth(1).click();
    await second.testid('conversation-title-input').fill('Renamed in the second tab');
    await second.testid('conversation-save').click();
    await first.testid('conversations').click();
    await first
      .testid('conversation-item')
      .filter({ hasText: 'Renamed in the second tab' })
      .waitFor({ timeout: WAIT_MS });
    await first.screenshot('ux-01-list-renamed');

    // Archive it from the first tab; it leaves both lists.
    await first.testid('conversation-archive').nth(1).click();
    for (const tab of [first, second]) {
      await tab
        .testid('conversation-item')
        .filter({ hasText: 'Renamed in the second tab' })
        .waitFor({ state: 'detached', timeout: WAIT_MS });
    }
    await second.screenshot('ux-02-list-archived');
    assert.deepEqual([...first.problems, ...second.problems], []);
    await context.close();
  });

  test('"talk to a person" escalates, and both tabs say so', async () => {
    const identity = { user: uniqueUser('escalator') };
    const context = await demo.browser.newContext({ viewport: { width: 1280, height: 800 } });
    const first = await DemoTab.open(context, demo.server.origin, identity);
    await ask(first, '[say] I would like a person');
    const second = await DemoTab.open(context, demo.server.origin, identity);
    await second.testid('message-user').waitFor();
    await first.testid('escalate').click();
    for (const tab of [first, second]) {
      await tab.testid('escalated').waitFor({ timeout: WAIT_MS });
      assert.equal(
        await tab.testid('escalated').textContent(),
        'A person has been asked to take over this conversation.',
      );
      assert.equal(await tab.testid('escalate').isVisible(), false);
    }
    await second.screenshot('ux-03-escalated');
    assert.deepEqual([...first.problems, ...second.problems], []);
    await context.close();
  });

  test("the demo's Globex tenant gets a German widget", async () => {
    const context = await demo.browser.newContext({ viewport: { width: 1280, height: 800 } });
    const tab = await DemoTab.open(context, demo.server.origin, {
      user: uniqueUser('globex'),
      tenant: 'globex',
    });
    await tab.testid('send').filter({ hasText: 'Send' }).waitFor();
    // Choosing Globex in the demo's menu asks for a token with the tenant's locale, de-DE.
    await tab.page.locator('#tenant').selectOption('globex');
    await tab.testid('send').filter({ hasText: 'Senden' }).waitFor({ timeout: WAIT_MS });
    await tab.waitConnected();
    assert.equal(await tab.testid('input').getAttribute('placeholder'), 'Fragen Sie etwas…');
    await tab.type('approve PO-1001');
    const card = tab.testid('confirm-card');
    await card.waitFor({ timeout: WAIT_MS });
    assert.equal(await card.getByTestId('approve').textContent(), 'Genehmigen');
    assert.match(await card.getByTestId('countdown').textContent(), /^Läuft ab in \d+:\d\d$/);
    await tab.screenshot('ux-04-german-card');
    assert.deepEqual(tab.problems, []);
    await context.close();
  });
});
