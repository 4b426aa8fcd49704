/**
 * Losing the connection in the middle of an answer, in headless Chromium against a real
 * `parley serve`: the socket cut by the network, and the server restarted. Each time the banner
 * shows, the page reconnects on its own, and the answer ends complete with no text twice.
 *
 * Run: cd client-js && node --test test-e2e/   (skipped when Chromium or the venv is missing)
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { DemoTab, TcpProxy, WAIT_MS, demoRequirements, serveDemo, uniqueUser } from './harness.js';

const { chromium, python, skip } = await demoRequirements();

// Plain words (no Markdown), long enough to stream for several seconds at 8 tokens a second.
const ANSWER_CUT =
  'The quarterly close is on track. Receivables fell by four percent since last month, ' +
  'payables are steady, and the two largest suppliers confirmed their delivery dates. ' +
  'Three purchase orders still wait for approval, and one shipment is late by a week.';
const ANSWER_KILLED =
  'Counting the open orders one by one: one, two, three, four, five, six, seven, eight, nine, ' +
  'ten, eleven, twelve, thirteen, fourteen, fifteen, sixteen, seventeen, eighteen, nineteen.';
const ANSWER_RESTART =
  'Here is the summary you asked for. Cash in the operating account covers the next six ' +
  'weeks of payroll and supplier payments. The reserve account is untouched, the payroll ' +
  'account is topped up on Friday, and no invoice is overdue by more than thirty days.';

/**
 * The page's problems but the browser's own reports of the connection attempts that failed
 * while the server was away, which these tests cause on purpose.
 *
 * @param {string[]} problems
 */
function unexpected(problems) {
  return problems.filter((problem) => !/^console: WebSocket connection to .* failed/.test(problem));
}

/**
 * The page's `ready` frames from now on: whether each one resumed the stream.
 *
 * @param {DemoTab} tab
 */
async function recordReady(tab) {
  await tab.page.evaluate(() => {
    const client = /** @type {any} */ (document.querySelector('parley-assistant'))?.client;
    /** @type {any} */ (window).parleyReady = [];
    client.addEventListener('ready', (/** @type {CustomEvent} */ event) =>
      /** @type {any} */ (window).parleyReady.push(event.detail.resumed),
    );
  });
}

/**
 * Wait until the newest answer shows more than `chars` characters while still streaming.
 *
 * @param {DemoTab} tab
 * @param {number} chars
 */
async function waitStreamed(tab, chars) {
  await tab.page.waitForFunction(
    (/** @type {number} */ n) => {
      const root = document.querySelector('parley-assistant')?.shadowRoot;
      const answer = root?.querySelector('[data-testid="message-assistant"]');
      return (
        answer?.getAttribute('data-status') === 'streaming' &&
        (answer.querySelector('.bubble')?.textContent ?? '').length > n
      );
    },
    chars,
    { timeout: WAIT_MS },
  );
}

/**
 * Wait for the page's next `ready` after the connection was lost, and return what the `ready`
 * frames said about resuming.
 *
 * @param {DemoTab} tab
 * @returns {Promise<boolean[]>}
 */
async function waitReconnected(tab) {
  await tab.page.waitForFunction(
    () => /** @type {any} */ (window).parleyReady.length > 0,
    undefined,
    {
      timeout: WAIT_MS,
    },
  );
  await tab.waitConnected();
  return tab.page.evaluate(() => /** @type {any} */ (window).parleyReady);
}

/**
 * The answer finished exactly as the model said it, shown once, and never showed anything but
 * a beginning of it (duplicated or replayed text would not be a prefix); the banner came and
 * went.
 *
 * @param {DemoTab} tab
 * @param {string} expected
 */
async function assertCompleteOnce(tab, expected) {
  const answer = tab.testid('message-assistant');
  await answer.and(tab.page.locator('[data-status="complete"]')).waitFor({ timeout: WAIT_MS });
  assert.equal(await answer.locator('.bubble').textContent(), expected);
  assert.equal(await tab.testid('message-assistant').count(), 1);
  assert.equal(await tab.testid('message-user').count(), 1);
  const samples = await tab.samples();
  for (const sample of samples) {
    if (sample.text !== null) {
      assert.ok(expected.startsWith(sample.text), `shown text is not a prefix: ${sample.text}`);
    }
    assert.ok(sample.count <= 1, 'never two answers on screen');
  }
  assert.ok(
    samples.some((s) => s.banner),
    'the reconnecting banner showed',
  );
  await tab.testid('banner').waitFor({ state: 'hidden' });
}

describe('an answer survives a lost connection', { skip }, () => {
  // Slow replies, and a drain long enough for one to finish while the server stops.
  const demo = serveDemo({
    python: /** @type {string} */ (python),
    chromium,
    env: { PARLEY_DEV_MODEL_TOKEN_RATE: '8', PARLEY_SHUTDOWN_DRAIN_S: '60' },
  });

  test('the socket is cut during a reply: banner, reconnect, resumed answer', async () => {
    const proxy = new TcpProxy(demo.server.port);
    await proxy.start();
    const context = await demo.browser.newContext({ viewport: { width: 1280, height: 800 } });
    try {
      const tab = await DemoTab.open(context, proxy.origin, { user: uniqueUser('cut') });
      await tab.startRecording();
      await recordReady(tab);
      await tab.type(`[say] ${ANSWER_CUT}`);
      await waitStreamed(tab, 20);

      // The network goes away mid-answer and stays away for a while.
      proxy.down = true;
      proxy.cut();
      await tab.testid('banner').waitFor({ timeout: WAIT_MS });
      assert.equal(
        await tab.testid('banner').locator('span').textContent(),
        'Connection lost. Reconnecting…',
      );
      assert.notEqual(await tab.testid('connection-state').getAttribute('data-state'), 'connected');
      await tab.screenshot('07-reconnecting');
      await sleep(1500);
      proxy.down = false;

      // The tab caught up from the server's frame log instead of rebuilding.
      assert.deepEqual(await waitReconnected(tab), [true]);
      await assertCompleteOnce(tab, ANSWER_CUT);
      assert.deepEqual(unexpected(tab.problems), []);
    } finally {
      await context.close();
      await proxy.close();
    }
  });

  test('the server restarts during a reply: banner, reconnect, the finished answer', async () => {
    const context = await demo.browser.newContext({ viewport: { width: 1280, height: 800 } });
    try {
      const tab = await DemoTab.open(context, demo.server.origin, { user: uniqueUser('restart') });
      await tab.startRecording();
      await recordReady(tab);
      await tab.type(`[say] ${ANSWER_RESTART}`);
      await waitStreamed(tab, 20);

      // A deploy: on SIGTERM the server finishes the running turn while the socket stays open,
      // then closes it with 1012 and exits; a new process starts on the same port with the
      // same database.
      const stopped = demo.server.stop('SIGTERM');
      await tab.testid('banner').waitFor({ timeout: WAIT_MS });
      await tab.screenshot('08-restarting');
      await stopped;
      await demo.server.start();

      // The new process has a new frame log, so the tab rebuilt from its snapshot: the answer
      // it shows now came from the database, not from the frames it saw before.
      assert.deepEqual(await waitReconnected(tab), [false]);
      await assertCompleteOnce(tab, ANSWER_RESTART);
      assert.deepEqual(unexpected(tab.problems), []);
    } finally {
      await context.close();
    }
  });

  test('the server is killed during a reply: the page reconnects and nothing hangs', async () => {
    const context = await demo.browser.newContext({ viewport: { width: 1280, height: 800 } });
    try {
      const tab = await DemoTab.open(context, demo.server.origin, { user: uniqueUser('killed') });
      await tab.startRecording();
      await recordReady(tab);
      await tab.type(`[say] ${ANSWER_KILLED}`);
      await waitStreamed(tab, 20);

      // No drain this time: the process and the turn it was running are gone at once.
      await demo.server.stop('SIGKILL');
      await tab.testid('banner').waitFor({ timeout: WAIT_MS });
      await demo.server.start();
      assert.deepEqual(await waitReconnected(tab), [false]);

      // The answer no longer streams: it ends as the server left it, never as a cursor that
      // blinks forever, and the conversation goes on.
      const answer = tab.testid('message-assistant');
      await answer.and(tab.page.locator(':not([data-status="streaming"])')).waitFor();
      assert.match(String(await answer.getAttribute('data-status')), /^(interrupted|complete)$/);
      assert.ok(ANSWER_KILLED.startsWith(String(await answer.locator('.bubble').textContent())));
      assert.equal(await tab.testid('stop').isVisible(), false);
      assert.equal(await tab.testid('typing').isVisible(), false);
      await tab.screenshot('09-after-kill');
      await tab.type('[say] Still here.');
      await tab
        .testid('message-assistant')
        .nth(1)
        .and(tab.page.locator('[data-status="complete"]'))
        .waitFor({ timeout: WAIT_MS });
      assert.equal(
        await tab.testid('message-assistant').nth(1).locator('.bubble').textContent(),
        'Still here.',
      );
      assert.equal(await tab.testid('message-user').count(), 2);
      assert.deepEqual(unexpected(tab.problems), []);
    } finally {
      await context.close();
    }
  });
});
