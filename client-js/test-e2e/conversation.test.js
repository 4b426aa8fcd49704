/**
 * The demo page against a real `parley serve`, in headless Chromium: a question with the typing
 * indicator and the streamed answer, two tabs of one user in step (messages, a confirmation, its
 * result), and model text that tries to be HTML.
 *
 * Run: cd client-js && node --test test-e2e/   (skipped when Chromium or the venv is missing)
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';

import { ARTIFACTS, DemoTab, WAIT_MS, demoRequirements, serveDemo, uniqueUser } from './harness.js';

const { chromium, python, skip } = await demoRequirements();

describe('the demo page against parley serve', { skip }, () => {
  // Slow enough that the typing indicator and a growing answer are on screen for a while.
  const demo = serveDemo({
    python: /** @type {string} */ (python),
    chromium,
    env: { PARLEY_DEV_MODEL_TOKEN_RATE: '12' },
  });

  test('a question shows the typing indicator, then the answer as it streams', async () => {
    const context = await demo.browser.newContext({ viewport: { width: 1280, height: 800 } });
    const tab = await DemoTab.open(context, demo.server.origin, { user: uniqueUser('asker') });
    await tab.testid('empty').waitFor();
    // The server runs the scripted dev model, and the widget says so.
    await tab.testid('dev-label').waitFor({ timeout: WAIT_MS });
    assert.equal(await tab.testid('dev-label').textContent(), 'development model');
    await tab.screenshot('01-idle');
    await tab.screenshot('01-idle-page', { fullPage: true });

    await tab.startRecording();
    await tab.type("what's our cash balance?");
    await tab.testid('message-user').waitFor();
    assert.equal(
      await tab.testid('message-user').locator('.bubble').textContent(),
      "what's our cash balance?",
    );
    const answer = tab.testid('message-assistant');
    await answer.and(tab.page.locator('[data-status="streaming"]')).waitFor({ timeout: WAIT_MS });
    await tab.page.waitForFunction(
      () => {
        const root = document.querySelector('parley-assistant')?.shadowRoot;
        const bubble = root?.querySelector('[data-testid="message-assistant"] .bubble');
        return (bubble?.textContent ?? '').length > 30;
      },
      undefined,
      { timeout: WAIT_MS },
    );
    await tab.screenshot('02-streaming');
    await answer.and(tab.page.locator('[data-status="complete"]')).waitFor({ timeout: WAIT_MS });
    await tab.testid('feedback-up').waitFor();
    await tab.screenshot('03-answered');

    const samples = await tab.samples();
    const firstText = samples.findIndex((s) => Boolean(s.text));
    assert.ok(firstText > 0, 'the answer appeared');
    assert.ok(
      samples.slice(0, firstText).some((s) => s.typing),
      `the typing indicator showed before the answer: ${JSON.stringify(samples.slice(0, firstText))}`,
    );
    const streamed = samples.filter((s) => s.status === 'streaming' && s.text);
    const lengths = new Set(streamed.map((s) => s.text?.length));
    assert.ok(lengths.size >= 3, `the answer grew while streaming: ${JSON.stringify(streamed)}`);
    const final = await answer.locator('.bubble').textContent();
    assert.match(final, /cash/i);
    assert.equal(await tab.testid('typing').isVisible(), false);
    assert.equal(await tab.testid('stop').isVisible(), false);
    assert.equal(await tab.testid('message-assistant').count(), 1);
    assert.deepEqual(tab.problems, []);
    await context.close();
  });

  test('on a phone the demo fits the screen and the open panel fills it', async () => {
    const context = await demo.browser.newContext({
      viewport: { width: 390, height: 844 },
      isMobile: true,
      hasTouch: true,
    });
    const page = await context.newPage();
    await page.goto(`${demo.server.origin}/`);
    // Anything wider than the screen widens the layout viewport and pushes the fixed launcher
    // off it, so the page must not scroll sideways.
    assert.equal(await page.evaluate(() => document.documentElement.scrollWidth), 390);
    const launcher = page.locator('parley-assistant [data-testid="launcher"]');
    const box = await launcher.boundingBox();
    assert.ok(box && box.x + box.width <= 390 && box.y + box.height <= 844, JSON.stringify(box));
    await launcher.tap();
    const panel = page.locator('parley-assistant [data-testid="panel"]');
    await panel.waitFor();
    const panelBox = await panel.boundingBox();
    assert.deepEqual(
      panelBox && [panelBox.x, panelBox.y, panelBox.width, panelBox.height],
      [0, 0, 390, 844],
    );
    await page.locator('parley-assistant [data-testid="empty"]').waitFor();
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, '10-phone.png'), animations: 'disabled' });
    await context.close();
  });

  test('model text that looks like HTML is shown as text and runs nothing', async () => {
    const context = await demo.browser.newContext({ viewport: { width: 1280, height: 800 } });
    const tab = await DemoTab.open(context, demo.server.origin, { user: uniqueUser('xss') });
    const payload =
      'Look: <img src=x onerror="window.parleyPwned=1;alert(1)"> ' +
      '<script>window.parleyPwned=2</script> <b onmouseover="window.parleyPwned=3">bold?</b>';
    await tab.type(`[say] ${payload}`);
    const answer = tab.testid('message-assistant');
    await answer.and(tab.page.locator('[data-status="complete"]')).waitFor({ timeout: WAIT_MS });
    assert.equal(await answer.locator('.bubble').textContent(), payload);
    assert.equal(
      await tab.testid('message-user').locator('.bubble').textContent(),
      `[say] ${payload}`,
    );
    const panel = tab.testid('panel');
    assert.equal(await panel.locator('img, script, b').count(), 0);
    await answer.locator('.bubble').hover();
    await tab.screenshot('04-html-as-text');
    assert.equal(await tab.page.evaluate(() => /** @type {any} */ (window).parleyPwned), undefined);
    const images = tab.requests.filter((url) => new URL(url).pathname.endsWith('/x'));
    assert.deepEqual(images, [], 'no request for the image');
    assert.deepEqual(tab.problems, []);
    await context.close();
  });

  test('two tabs of one user: messages, a confirmation and its result appear in both', async () => {
    // The demo's default identity: alice at acme, an admin, who may approve purchase orders.
    const alice = { user: 'alice', tenant: 'acme', roles: 'admin', name: 'Alice' };
    const context = await demo.browser.newContext({ viewport: { width: 1280, height: 800 } });
    const first = await DemoTab.open(context, demo.server.origin, alice);
    const second = await DemoTab.open(context, demo.server.origin, alice);

    await first.type('show overdue purchase orders');
    for (const tab of [first, second]) {
      await tab.testid('message-user').waitFor({ timeout: WAIT_MS });
      assert.equal(
        await tab.testid('message-user').locator('.bubble').textContent(),
        'show overdue purchase orders',
      );
      const answer = tab.testid('message-assistant');
      await answer.and(tab.page.locator('[data-status="complete"]')).waitFor({ timeout: WAIT_MS });
      await tab.testid('tool-line').first().waitFor();
    }
    assert.equal(
      await second.testid('message-assistant').locator('.bubble').textContent(),
      await first.testid('message-assistant').locator('.bubble').textContent(),
    );

    await second.type('approve PO-1001');
    const cards = [first, second].map((tab) => tab.testid('confirm-card'));
    for (const card of cards) {
      await card.and(card.page().locator('[data-status="pending"]')).waitFor({ timeout: WAIT_MS });
      assert.match(await card.textContent(), /PO-1001/);
      assert.match(await card.getByTestId('countdown').textContent(), /^Expires in \d+:\d\d$/);
      assert.equal(await card.getByTestId('approve').isEnabled(), true);
    }
    assert.equal(await first.testid('badge').textContent(), '1');
    // The turn that asked has ended: the card waits, the conversation does not.
    for (const tab of [first, second]) {
      await tab.testid('typing').waitFor({ state: 'hidden', timeout: WAIT_MS });
    }
    await first.screenshot('05-confirmation');

    // Approve in the tab that did not ask: both cards turn into the result.
    await first.testid('approve').click();
    for (const card of cards) {
      await card.and(card.page().locator('[data-status="approved"]')).waitFor({ timeout: WAIT_MS });
      const result = card.getByTestId('action-result');
      await result
        .and(card.page().locator(':not([data-tone="busy"])'))
        .waitFor({ timeout: WAIT_MS });
      assert.equal(await card.getByTestId('approve').isVisible(), false);
      assert.equal(await card.getByTestId('countdown').isVisible(), false);
    }
    const results = await Promise.all(
      cards.map((card) => card.getByTestId('action-result').textContent()),
    );
    assert.equal(results[0], results[1]);
    assert.match(results[0], /approved/i);
    // The decision starts a continuation turn that reports the outcome, in both tabs.
    for (const tab of [first, second]) {
      await tab.page.waitForFunction(
        () => {
          const root = document.querySelector('parley-assistant')?.shadowRoot;
          const answers = [...(root?.querySelectorAll('[data-testid="message-assistant"]') ?? [])];
          const reported = answers.some((answer) =>
            answer.textContent?.includes('Done: PO-1001 is now approved.'),
          );
          return reported && !root?.querySelector('[data-testid="stop"]:not([hidden])');
        },
        undefined,
        { timeout: WAIT_MS },
      );
    }
    await first.screenshot('06-result');
    assert.equal(await first.testid('badge').isVisible(), false);
    // The demo's table follows the action in both tabs.
    for (const tab of [first, second]) {
      assert.equal(await tab.page.locator('tr[data-po="PO-1001"] .pill').textContent(), 'Approved');
    }
    assert.deepEqual([...first.problems, ...second.problems], []);
    await context.close();
  });
});
