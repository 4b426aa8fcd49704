/**
 * The widget in a real Chromium, against the in-page fake server (fake-server.js).
 *
 * Run: node --test client-js/test-browser/   (skipped when no Chromium is found; set
 * PARLEY_CHROMIUM to its path if it is not /usr/bin/chromium or a Playwright download).
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { findChromium } from '../test-support/chromium.js';
import { servePages } from './page-server.js';

const CLIENT_DIR = fileURLToPath(new URL('..', import.meta.url));
/** Screenshots go here (git-ignored). */
const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/browser/', import.meta.url));
/** Paths the test server was asked for, to prove model text made no requests. */
const requested = /** @type {string[]} */ ([]);
/** Authorization headers the CSV export route saw. */
const exportAuth = /** @type {(string | undefined)[]} */ ([]);

/**
 * A frame of the widget's view fixtures (client-js/test/fixtures-views/).
 *
 * @param {string} name
 * @returns {any}
 */
function fixtureFrame(name) {
  const file = join(CLIENT_DIR, 'test', 'fixtures-views', `${name}.json`);
  const { frame } = JSON.parse(readFileSync(file, 'utf8'));
  delete frame.seq;
  return frame;
}
/** @param {string} attributes extra attributes of the element */
function page(attributes = '') {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>widget test</title></head><body>
<script src="/fake-server.js"></script>
<script type="module" src="/client/widget.js"></script>
<parley-assistant token-url="/token" title="Test Assistant" suggestions="what's our cash balance?|approve PO-1001" ${attributes}></parley-assistant>
</body></html>`;
}

/**
 * The suite's routes beside the client files: the test pages, a token route, a status route
 * and a CSV export.
 *
 * @type {import('./page-server.js').Routes}
 */
async function routes(request, url, send) {
  requested.push(url.pathname);
  if (url.pathname === '/') return send(200, 'text/html', page());
  if (url.pathname === '/open') return send(200, 'text/html', page('open'));
  if (url.pathname === '/open-de') return send(200, 'text/html', page('open lang="de-DE"'));
  if (url.pathname.startsWith('/api/v1/exports/')) {
    // As the real route: the owner's token only, a CSV of every row.
    exportAuth.push(request.headers.authorization);
    if (request.headers.authorization !== 'Bearer test-token') {
      return send(401, 'application/json', '{"error": {"code": "unauthenticated"}}');
    }
    return send(200, 'text/csv', 'number,total\nPO-1001,12400.00\n');
  }
  if (url.pathname === '/nostatus')
    return send(200, 'text/html', page('server="/nostatus/" open'));
  if (url.pathname === '/token')
    return send(
      200,
      'application/json',
      JSON.stringify({ token: 'test-token', expires_in: 3600 }),
    );
  if (url.pathname === '/api/v1/status') {
    // As the real route: authenticated callers only.
    if (request.headers.authorization !== 'Bearer test-token') {
      return send(401, 'application/json', '{"error": {"code": "unauthenticated"}}');
    }
    return send(
      200,
      'application/json',
      JSON.stringify({ model: { name: 'parley-dev', dev: true } }),
    );
  }
}

const browserFound = await findChromium();

describe(
  'parley-assistant in a browser',
  { skip: 'missing' in browserFound ? browserFound.missing : false },
  () => {
    const pages = servePages(routes, browserFound);

    /**
     * A fresh page with the widget, connected to the fake server.
     *
     * @param {string} [path]
     * @param {{width: number, height: number}} [viewport]
     */
    async function open(path = '/', viewport = { width: 1280, height: 800 }) {
      const context = await pages.browser.newContext({ viewport });
      const p = await context.newPage();
      /** @type {string[]} */
      const problems = [];
      p.on('pageerror', (error) => problems.push(error.message));
      await p.goto(pages.origin + path);
      await p.waitForFunction(
        () => document.querySelector('parley-assistant')?.client?.state === 'connected',
      );
      /** @param {string} id */
      const testid = (id) => p.locator(`parley-assistant [data-testid="${id}"]`);
      /** @param {Record<string, unknown>} frame */
      const emit = (frame) => p.evaluate((f) => window.parleyFake.emit(f), frame);
      /** @param {string} [type] */
      const sent = (type) => p.evaluate((t) => window.parleyFake.sent(t), type);
      return { page: p, context, testid, emit, sent, problems };
    }

    test('the launcher opens the panel; Esc closes it and returns focus', async () => {
      const { page: p, context, testid, problems } = await open();
      assert.equal(await testid('panel').isVisible(), false);
      await testid('launcher').click();
      assert.equal(await testid('panel').isVisible(), true);
      assert.equal(await testid('launcher').isVisible(), false);
      assert.equal(
        await p.evaluate(() =>
          document
            .querySelector('parley-assistant')
            ?.shadowRoot?.activeElement?.getAttribute('data-testid'),
        ),
        'input',
      );
      assert.equal(await testid('panel').getAttribute('role'), 'dialog');
      assert.equal(await testid('message-list').getAttribute('role'), 'log');
      assert.equal(await testid('message-list').getAttribute('aria-live'), 'polite');
      await testid('input').press('Escape');
      assert.equal(await testid('panel').isVisible(), false);
      assert.equal(
        await p.evaluate(() =>
          document
            .querySelector('parley-assistant')
            ?.shadowRoot?.activeElement?.getAttribute('data-testid'),
        ),
        'launcher',
      );
      assert.deepEqual(problems, []);
      await context.close();
    });

    test('Enter sends, Shift+Enter adds a line; user text is shown as text', async () => {
      const { context, testid, sent } = await open('/open');
      await testid('input').fill('first line');
      await testid('input').press('Shift+Enter');
      await testid('input').pressSequentially('<b>second</b>');
      await testid('input').press('Enter');
      await testid('message-user').first().waitFor();
      const [message] = await sent('user_message');
      assert.equal(message.text, 'first line\n<b>second</b>');
      assert.equal(
        await testid('message-user').locator('.bubble').textContent(),
        'first line\n<b>second</b>',
      );
      assert.equal(await testid('message-user').locator('b').count(), 0);
      assert.equal(await testid('input').inputValue(), '');
      await context.close();
    });

    test('a turn: thinking status, tool lines, streamed Markdown, Stop, feedback', async () => {
      const { page: p, context, testid, emit, sent } = await open('/open');
      await testid('input').fill('show overdue purchase orders');
      await testid('send').click();
      await testid('message-user').waitFor();
      const base = { conversation_id: 'c1', turn_id: 't1' };
      await emit({ type: 'thinking', ...base, status: 'looking up purchase orders' });
      await testid('typing').waitFor();
      assert.equal(await testid('typing').textContent(), 'looking up purchase orders…');
      assert.equal(await testid('stop').isVisible(), true);
      await emit({
        type: 'tool_call',
        ...base,
        call_id: 'k1',
        name: 'list_purchase_orders',
        arguments: { status: 'overdue' },
      });
      await emit({
        type: 'tool_result',
        ...base,
        call_id: 'k1',
        name: 'list_purchase_orders',
        ok: true,
        summary: '1 purchase order',
      });
      await emit({
        type: 'response_delta',
        ...base,
        message_id: 'a1',
        delta: 'One **overdue** order:\n- PO-1006 <script>window.pwned = 1</script>',
      });
      await testid('message-assistant').waitFor();
      assert.deepEqual(await testid('tool-line').allTextContents(), [
        'List purchase orders: 1 purchase order',
      ]);
      assert.equal(await testid('message-assistant').getAttribute('data-status'), 'streaming');
      assert.equal(await testid('message-assistant').locator('strong').textContent(), 'overdue');
      assert.equal(
        await testid('message-assistant').locator('li').textContent(),
        'PO-1006 <script>window.pwned = 1</script>',
      );
      assert.equal(await testid('message-assistant').locator('script').count(), 0);
      await testid('stop').click();
      assert.deepEqual(await sent('cancel'), [
        { type: 'cancel', conversation_id: 'c1', turn_id: 't1' },
      ]);
      await emit({ type: 'turn_end', ...base, status: 'cancelled' });
      await testid('stop').waitFor({ state: 'hidden' });
      assert.equal(await testid('typing').isVisible(), false);
      assert.equal(await testid('message-assistant').getAttribute('data-status'), 'cancelled');

      await emit({
        type: 'response',
        ...base,
        turn_id: 't2',
        message_id: 'a2',
        text: 'Done.',
        usage: {
          prompt_tokens: 1,
          completion_tokens: 1,
          total_tokens: 2,
          cost: 0,
          model: 'dev',
          estimated: true,
        },
      });
      await testid('feedback-up').waitFor();
      await testid('feedback-up').click();
      assert.deepEqual(await sent('feedback'), [
        { type: 'feedback', message_id: 'a2', rating: 'up' },
      ]);
      await p
        .locator('parley-assistant [data-testid="feedback-up"][aria-pressed="true"]')
        .waitFor();
      await testid('feedback-down').click();
      assert.equal((await sent('feedback')).at(-1).rating, 'down');
      assert.equal(await p.evaluate(() => /** @type {any} */ (window).pwned), undefined);
      await context.close();
    });

    test('a confirmation card counts down, approves and shows the outcome', async () => {
      const { page: p, context, testid, emit, sent } = await open('/open');
      await testid('input').fill('approve PO-1001');
      await testid('input').press('Enter');
      await testid('message-user').waitFor();
      const expires = new Date(Date.now() + 125_000).toISOString();
      await emit({ type: 'thinking', conversation_id: 'c1', turn_id: 't1' });
      await emit({
        type: 'confirm_request',
        conversation_id: 'c1',
        turn_id: 't1',
        token: 'tok-1',
        action: 'approve_purchase_order',
        params: { po_number: 'PO-1001', total: '12400.00' },
        summary: 'Approve PO-1001 for USD 12,400.00',
        expires_at: expires,
      });
      await testid('confirm-card').waitFor();
      assert.match(
        String(await testid('confirm-card').textContent()),
        /Approve PO-1001 for USD 12,400.00/,
      );
      assert.match(
        String(await testid('confirm-card').locator('dl').textContent()),
        /PO number\s*PO-1001/,
      );
      assert.match(String(await testid('countdown').textContent()), /^Expires in 2:0\d$/);
      // The turn waits for the user now; the indicator says so instead of "Thinking…".
      assert.equal(await testid('typing').textContent(), 'Waiting for your decision…');
      await testid('approve').click();
      assert.deepEqual(await sent('confirm'), [
        { type: 'confirm', token: 'tok-1', decision: 'approve' },
      ]);
      await testid('approve').and(p.locator('parley-assistant button:disabled')).waitFor();
      await emit({ type: 'confirm_resolved', token: 'tok-1', status: 'approved' });
      await emit({
        type: 'action_executed',
        token: 'tok-1',
        action: 'approve_purchase_order',
        ok: true,
        result: { number: 'PO-1001', status: 'approved' },
        audit_id: 'a1',
      });
      await testid('action-result').filter({ hasText: 'Done' }).waitFor();
      assert.equal(await testid('typing').textContent(), 'Thinking…');
      assert.match(
        String(await testid('action-result').textContent()),
        /Done\.\s*Number\s*PO-1001\s*Status\s*approved/,
      );
      assert.equal(await testid('approve').isVisible(), false);
      await context.close();
    });

    test('a decision made in another tab turns the card into its result here too', async () => {
      const { context, testid, emit } = await open('/open');
      await emit({
        type: 'message',
        conversation_id: 'c1',
        message_id: 'u1',
        client_msg_id: 'x',
        role: 'user',
        text: 'reject PO-1003',
      });
      await emit({
        type: 'confirm_request',
        conversation_id: 'c1',
        turn_id: 't1',
        token: 'tok-2',
        action: 'reject_purchase_order',
        params: { po_number: 'PO-1003' },
        summary: 'Reject PO-1003',
        expires_at: new Date(Date.now() + 60_000).toISOString(),
      });
      await testid('reject').waitFor();
      await emit({ type: 'confirm_resolved', token: 'tok-2', status: 'rejected' });
      await testid('action-result').filter({ hasText: 'Rejected' }).waitFor();
      assert.equal(await testid('reject').isVisible(), false);
      await context.close();
    });

    test('the launcher badge counts pending confirmations while minimised', async () => {
      const { context, testid, emit } = await open('/');
      await emit({
        type: 'confirm_request',
        conversation_id: 'c1',
        turn_id: 't1',
        token: 'tok-3',
        action: 'approve_purchase_order',
        params: {},
        summary: 'Approve PO-1002',
        expires_at: new Date(Date.now() + 60_000).toISOString(),
      });
      await testid('badge').waitFor();
      assert.equal(await testid('badge').textContent(), '1');
      await context.close();
    });

    test('a reconnecting banner while disconnected; a terminal close says why', async () => {
      const { page: p, context, testid } = await open('/open');
      assert.equal(await testid('banner').isVisible(), false);
      await p.evaluate(() => window.parleyFake.drop(1012));
      await testid('banner').waitFor();
      assert.match(String(await testid('banner').textContent()), /Reconnecting/);
      await testid('banner').waitFor({ state: 'hidden' });
      assert.equal(await testid('connection-state').getAttribute('data-state'), 'connected');
      await p.evaluate(() => window.parleyFake.drop(4403));
      await testid('banner').filter({ hasText: "isn't allowed" }).waitFor();
      assert.equal(await testid('reconnect').isVisible(), true);
      await testid('reconnect').click();
      await testid('connection-state').and(p.locator('[data-state="connected"]')).waitFor();
      await context.close();
    });

    test('errors are shown in plain words', async () => {
      const { context, testid, emit } = await open('/open');
      await emit({
        type: 'error',
        code: 'rate_limited',
        message: 'too many messages',
        retryable: true,
        retry_after: 3,
      });
      await testid('error').waitFor();
      assert.equal(
        await testid('error').locator('span').textContent(),
        "You're sending messages faster than allowed. Please wait a moment.",
      );
      await context.close();
    });

    test('a refused message can be retried with the same id', async () => {
      const { page: p, context, testid, emit, sent } = await open('/open');
      await p.evaluate(() => (window.parleyFake.state.auto = false));
      await testid('input').fill('x');
      await testid('input').press('Enter');
      const [message] = await sent('user_message');
      await emit({
        type: 'error',
        code: 'message_too_long',
        message: 'too long',
        retryable: false,
        ref: message.client_msg_id,
      });
      await testid('retry').waitFor();
      assert.match(
        String(await testid('message-user').textContent()),
        /Not sent\. That message is too long/,
      );
      await testid('retry').click();
      assert.equal((await sent('user_message')).at(-1).client_msg_id, message.client_msg_id);
      await context.close();
    });

    test('the development model label follows the status route', async () => {
      const shown = await open('/open');
      await shown.testid('dev-label').waitFor();
      await shown.context.close();
      const missing = await open('/nostatus');
      await missing.page.waitForTimeout(300);
      assert.equal(await missing.testid('dev-label').isVisible(), false);
      await missing.context.close();
    });

    test('suggestions send their prompt', async () => {
      const { context, testid, sent } = await open('/open');
      await testid('suggestion').first().click();
      await testid('message-user').waitFor();
      assert.equal((await sent('user_message'))[0].text, "what's our cash balance?");
      assert.equal(await testid('empty').isVisible(), false);
      await context.close();
    });

    test('under 480px the open panel fills the screen', async () => {
      const { page: p, context, testid } = await open('/open', { width: 390, height: 700 });
      const box = await testid('panel').boundingBox();
      assert.deepEqual(box && [box.x, box.y, box.width, box.height], [0, 0, 390, 700]);
      assert.ok(await p.evaluate(() => document.documentElement.scrollWidth <= 390));
      await context.close();
    });

    test('theming through CSS custom properties', async () => {
      const { page: p, context, testid } = await open('/');
      await p.addStyleTag({ content: 'parley-assistant { --parley-accent: rgb(200, 0, 100); }' });
      const color = await testid('launcher').evaluate((el) => getComputedStyle(el).backgroundColor);
      assert.equal(color, 'rgb(200, 0, 100)');
      await context.close();
    });

    /**
     * A user message, then a tool call and its result with `frame`'s view, in conversation c1.
     *
     * @param {(frame: Record<string, unknown>) => Promise<unknown>} emit
     * @param {any} result a tool_result frame
     */
    async function toolTurn(emit, result) {
      await emit({
        type: 'tool_call',
        conversation_id: 'c1',
        turn_id: result.turn_id,
        call_id: result.call_id,
        name: result.name,
        arguments: {},
      });
      await emit({ ...result, conversation_id: 'c1' });
    }

    /** @param {any} p a page @param {string} name */
    async function screenshot(p, name) {
      mkdirSync(ARTIFACTS, { recursive: true });
      await p.screenshot({ path: join(ARTIFACTS, `${name}.png`), animations: 'disabled' });
    }

    test('a table view: formatted, right-aligned, sortable, sticky header, "showing N of M"', async () => {
      const { page: p, context, testid, emit, problems } = await open('/open');
      await emit({
        type: 'message',
        conversation_id: 'c1',
        message_id: 'u1',
        client_msg_id: 'x1',
        role: 'user',
        text: 'show purchase orders',
      });
      await toolTurn(emit, fixtureFrame('tool-result-view-table'));
      const view = testid('view');
      await view.waitFor();
      assert.equal(await view.getAttribute('data-kind'), 'table');
      assert.equal(await view.locator('figcaption').textContent(), 'Purchase orders');
      assert.deepEqual(await view.locator('thead th').allTextContents(), [
        'Number',
        'Supplier',
        'Expected',
        'Total',
      ]);
      const totals = () => view.locator('tbody td:nth-child(4)').allTextContents();
      assert.deepEqual(await totals(), ['$12,400.00', '$3,150.00', '$48,750.00']);
      assert.equal(
        await view.locator('tbody tr').first().locator('td').nth(2).textContent(),
        'Jun 18, 2026',
      );
      const cell = view.locator('tbody td:nth-child(4)').first();
      assert.equal(await cell.evaluate((el) => getComputedStyle(el).textAlign), 'right');
      const header = view.locator('thead th').first();
      assert.equal(await header.evaluate((el) => getComputedStyle(el).position), 'sticky');
      assert.equal(await testid('view-note').textContent(), 'Showing 3 of 12');

      const total = view.locator('thead th').nth(3);
      await total.locator('button').click();
      assert.equal(await total.getAttribute('aria-sort'), 'ascending');
      assert.deepEqual(await totals(), ['$3,150.00', '$12,400.00', '$48,750.00']);
      await total.locator('button').click();
      assert.equal(await total.getAttribute('aria-sort'), 'descending');
      assert.deepEqual(await totals(), ['$48,750.00', '$12,400.00', '$3,150.00']);
      await screenshot(p, 'view-table');

      // The CSV comes from the server with the user's token, as a download.
      const download = p.waitForEvent('download');
      await testid('export').click();
      const file = await download;
      assert.equal(file.suggestedFilename(), 'call_po1.csv');
      assert.equal(readFileSync(await file.path(), 'utf8'), 'number,total\nPO-1001,12400.00\n');
      assert.equal(exportAuth.at(-1), 'Bearer test-token');
      assert.deepEqual(problems, []);
      await context.close();
    });

    test('a bar chart with a legend, an accessible label and a data table; KPI cards', async () => {
      const { page: p, context, testid, emit, problems } = await open('/open');
      await emit({
        type: 'message',
        conversation_id: 'c1',
        message_id: 'u1',
        client_msg_id: 'x1',
        role: 'user',
        text: 'show AR aging',
      });
      await toolTurn(emit, fixtureFrame('tool-result-view-chart'));
      await toolTurn(emit, fixtureFrame('tool-result-view-metrics'));
      const chart = testid('view').and(p.locator('[data-kind="chart"]'));
      await chart.waitFor();
      const canvas = chart.locator('canvas');
      assert.equal(await canvas.getAttribute('role'), 'img');
      assert.match(
        String(await canvas.getAttribute('aria-label')),
        /^Bar chart\. AR aging: Open amount by bucket, 5 values/,
      );
      // Chart.js drew something: the canvas has coloured pixels.
      await p.waitForFunction(() => {
        const root = document.querySelector('parley-assistant')?.shadowRoot;
        const c = /** @type {HTMLCanvasElement | null} */ (root?.querySelector('canvas'));
        if (!c || c.width === 0) return false;
        const data = c.getContext('2d')?.getImageData(0, 0, c.width, c.height).data ?? [];
        let painted = 0;
        for (let i = 3; i < data.length; i += 4) if (data[i] > 0) painted += 1;
        return painted > 500;
      });
      const table = testid('chart-data');
      assert.deepEqual(await table.locator('thead th').allTextContents(), [
        'bucket',
        'Open amount',
      ]);
      assert.deepEqual(await table.locator('tbody td:nth-child(2)').allTextContents(), [
        '$10,735.20',
        '$10,962.00',
        '$4,200.00',
        '$0.00',
        '$1,250.50',
      ]);
      // The fallback is for screen readers: in the accessibility tree, not on screen.
      assert.deepEqual(
        await table.evaluate((el) => [
          el.getBoundingClientRect().width,
          getComputedStyle(el).position,
        ]),
        [1, 'absolute'],
      );
      assert.equal(await table.locator('table').count(), 1);

      const metrics = testid('view').and(p.locator('[data-kind="metrics"]'));
      await metrics.waitFor();
      assert.deepEqual(await metrics.locator('[data-testid="metric"] .value').allTextContents(), [
        '$318,979.20',
        '12.5%',
        '7',
      ]);
      assert.deepEqual(await metrics.locator('[data-testid="metric"] dt').allTextContents(), [
        'Total cash',
        'Overdue share',
        'Open orders',
      ]);
      assert.equal(await metrics.locator('.hint').textContent(), '3 accounts');
      await metrics.scrollIntoViewIfNeeded();
      await screenshot(p, 'view-chart-metrics');
      await chart.scrollIntoViewIfNeeded();
      await screenshot(p, 'view-chart');
      assert.deepEqual(problems, []);
      await context.close();
    });

    test('a malformed view is left out with one warning; the tool line stays', async () => {
      const { page: p, context, testid, emit, problems } = await open('/open');
      /** @type {string[]} */
      const warnings = [];
      p.on('console', (message) => {
        if (message.type() === 'warning') warnings.push(message.text());
      });
      await emit({
        type: 'message',
        conversation_id: 'c1',
        message_id: 'u1',
        client_msg_id: 'x1',
        role: 'user',
        text: 'hi',
      });
      const result = fixtureFrame('tool-result-view-table');
      await toolTurn(emit, { ...result, view: { ...result.view, columns: [{ label: 'no key' }] } });
      await testid('tool-line').filter({ hasText: '12 purchase orders' }).waitFor();
      // More renders of the same item (a delta) do not warn again.
      await emit({
        type: 'response_delta',
        conversation_id: 'c1',
        turn_id: result.turn_id,
        message_id: 'a1',
        delta: 'Here.',
      });
      await testid('message-assistant').waitFor();
      assert.equal(await testid('view').count(), 0);
      assert.deepEqual(warnings, [
        'parley: a tool_result view is not shown: columns[0].key is missing',
      ]);
      assert.deepEqual(problems, []);
      await context.close();
    });

    test('line and pie charts are drawn and labelled too', async () => {
      const { page: p, context, testid, emit, problems } = await open('/open');
      await emit({
        type: 'message',
        conversation_id: 'c1',
        message_id: 'u1',
        client_msg_id: 'x1',
        role: 'user',
        text: 'trends',
      });
      const bar = fixtureFrame('tool-result-view-chart');
      for (const chart of ['line', 'pie']) {
        await toolTurn(emit, {
          ...bar,
          call_id: `call_${chart}`,
          view: { ...bar.view, chart, title: `Aging as ${chart}` },
        });
      }
      const canvases = testid('chart');
      await p.waitForFunction(() => {
        const root = document.querySelector('parley-assistant')?.shadowRoot;
        const all = /** @type {HTMLCanvasElement[]} */ ([
          ...(root?.querySelectorAll('canvas') ?? []),
        ]);
        return (
          all.length === 2 &&
          all.every((c) => {
            const data = c.getContext('2d')?.getImageData(0, 0, c.width, c.height).data ?? [];
            let painted = 0;
            for (let i = 3; i < data.length; i += 4) if (data[i] > 0) painted += 1;
            return painted > 500;
          })
        );
      });
      assert.match(
        String(await canvases.nth(0).getAttribute('aria-label')),
        /^Line chart\. Aging as line:/,
      );
      assert.match(
        String(await canvases.nth(1).getAttribute('aria-label')),
        /^Pie chart\. Aging as pie:/,
      );
      assert.equal(await testid('chart-data').count(), 2);
      await canvases.nth(1).scrollIntoViewIfNeeded();
      await screenshot(p, 'view-pie');
      assert.deepEqual(problems, []);
      await context.close();
    });

    test("views are formatted in the widget's lang and survive a snapshot rebuild", async () => {
      const { page: p, context, testid, emit } = await open('/open-de');
      await emit({
        type: 'message',
        conversation_id: 'c1',
        message_id: 'u1',
        client_msg_id: 'x1',
        role: 'user',
        text: 'show purchase orders',
      });
      const result = fixtureFrame('tool-result-view-table');
      await toolTurn(emit, result);
      await emit({
        type: 'response',
        conversation_id: 'c1',
        turn_id: result.turn_id,
        message_id: 'a1',
        text: 'Three of them.',
        usage: {
          prompt_tokens: 1,
          completion_tokens: 1,
          total_tokens: 2,
          cost: 0,
          model: 'dev',
          estimated: true,
        },
      });
      await testid('view').waitFor();
      assert.equal(
        await testid('view').locator('tbody td:nth-child(4)').first().textContent(),
        '12.400,00\u00a0$',
      );
      // lang="de-DE" is German words as well as German numbers.
      assert.equal(await testid('view-note').textContent(), '3 von 12 angezeigt');
      // The log was lost: the server answers with a new epoch and a snapshot of the messages.
      await p.evaluate((turnId) => {
        const fake = window.parleyFake;
        fake.state.epoch = 'epoch-2';
        fake.state.snapshot = {
          conversations: [
            {
              conversation_id: 'c1',
              title: 'POs',
              status: 'active',
              updated_at: '2026-01-01T00:00:00Z',
            },
          ],
          messages: [
            {
              conversation_id: 'c1',
              message_id: 'u1',
              role: 'user',
              text: 'show purchase orders',
              status: 'completed',
              created_at: '2026-01-01T00:00:00Z',
              client_msg_id: 'x1',
            },
            {
              conversation_id: 'c1',
              message_id: 'a1',
              role: 'assistant',
              text: 'Three of them.',
              status: 'completed',
              created_at: '2026-01-01T00:00:01Z',
              turn_id: turnId,
            },
          ],
        };
        fake.drop(1012);
      }, result.turn_id);
      await p.waitForFunction(() => window.parleyFake.state.sockets.length === 2);
      await testid('connection-state').and(p.locator('[data-state="connected"]')).waitFor();
      assert.equal(await testid('view').count(), 1);
      assert.equal(await testid('view').locator('tbody tr').count(), 3);
      await context.close();
    });

    test('a GFM table and links in an answer; the links open in a new tab, safely', async () => {
      const { page: p, context, testid, emit } = await open('/open');
      await emit({
        type: 'message',
        conversation_id: 'c1',
        message_id: 'u1',
        client_msg_id: 'x1',
        role: 'user',
        text: 'hello',
      });
      await emit({
        type: 'response',
        conversation_id: 'c1',
        turn_id: 't1',
        message_id: 'a1',
        text:
          'Open documents:\n\n| Customer | Due | Amount |\n| --- | --- | ---: |\n' +
          '| Wide World Importers | 2026-06-30 | $4,210.00 |\n| Acme | 2026-07-15 | $980.50 |\n\n' +
          'See [the aging report](https://erp.example.com/ar) or write to <mailto:ar@example.com>.',
        usage: {
          prompt_tokens: 1,
          completion_tokens: 1,
          total_tokens: 2,
          cost: 0,
          model: 'dev',
          estimated: true,
        },
      });
      const bubble = testid('message-assistant').locator('.bubble');
      await bubble.locator('table').waitFor();
      assert.deepEqual(await bubble.locator('th').allTextContents(), ['Customer', 'Due', 'Amount']);
      assert.equal(await bubble.locator('tbody tr').count(), 2);
      assert.equal(
        await bubble
          .locator('td')
          .nth(2)
          .evaluate((el) => getComputedStyle(el).textAlign),
        'right',
      );
      const links = bubble.locator('a');
      assert.equal(await links.count(), 2);
      for (const link of await links.all()) {
        assert.equal(await link.getAttribute('target'), '_blank');
        assert.equal(await link.getAttribute('rel'), 'noopener noreferrer');
      }
      assert.equal(await links.first().getAttribute('href'), 'https://erp.example.com/ar');
      assert.equal(await links.nth(1).getAttribute('href'), 'mailto:ar@example.com');
      await screenshot(p, 'markdown-table');
      await context.close();
    });

    test('HTML, scripts and javascript: links in model text render inert, also while streaming', async () => {
      const { page: p, context, testid, emit, problems } = await open('/open');
      await emit({
        type: 'message',
        conversation_id: 'c1',
        message_id: 'u1',
        client_msg_id: 'x1',
        role: 'user',
        text: 'hello',
      });
      const before = requested.length;
      const text =
        'Look: <img src=x onerror="window.pwned=1"> <script>window.pwned=2</script>\n\n' +
        '[click me](javascript:window.pwned=3) [data](data:text/html,<script>window.pwned=4</script>)\n\n' +
        '<a href="javascript:window.pwned=5">raw link</a> <iframe src="javascript:window.pwned=6"></iframe>\n\n' +
        '<b onmouseover="window.pwned=7">bold?</b> ![pic](http://127.0.0.1:1/x.png) **done**';
      // In pieces, as a stream: every intermediate text is rendered too.
      for (let at = 0; at < text.length; at += 17) {
        await emit({
          type: 'response_delta',
          conversation_id: 'c1',
          turn_id: 't1',
          message_id: 'a1',
          delta: text.slice(at, at + 17),
        });
      }
      const bubble = testid('message-assistant').locator('.bubble');
      await bubble.locator('strong').filter({ hasText: 'done' }).waitFor();
      await bubble.hover();
      const panel = testid('panel');
      assert.equal(
        await panel
          .locator('img, script, iframe, b, a[href^="javascript"], a[href^="data"]')
          .count(),
        0,
      );
      // Of all the links only the http one survives (an image written as a link is a link).
      assert.deepEqual(
        await bubble
          .locator('a')
          .evaluateAll((links) =>
            links.map((a) => [
              a.textContent,
              a.getAttribute('href'),
              a.getAttribute('target'),
              a.getAttribute('rel'),
            ]),
          ),
        [['pic', 'http://127.0.0.1:1/x.png', '_blank', 'noopener noreferrer']],
      );
      assert.match(String(await bubble.textContent()), /<img src=x onerror="window.pwned=1">/);
      assert.match(
        String(await bubble.textContent()),
        /<a href="javascript:window.pwned=5">raw link<\/a>/,
      );
      assert.equal(await p.evaluate(() => /** @type {any} */ (window).pwned), undefined);
      assert.deepEqual(
        requested.slice(before).filter((path) => path.endsWith('/x') || path.endsWith('x.png')),
        [],
      );
      await screenshot(p, 'markdown-inert');
      assert.deepEqual(problems, []);
      await context.close();
    });

    test('the sales-order confirmation card shows its lines as a table, never JSON', async () => {
      const { page: p, context, testid, emit } = await open('/open');
      await emit({
        type: 'message',
        conversation_id: 'c1',
        message_id: 'u1',
        client_msg_id: 'x1',
        role: 'user',
        text: 'hello',
      });
      const request = fixtureFrame('confirm-request-fields');
      await emit({
        ...request,
        conversation_id: 'c1',
        expires_at: new Date(Date.now() + 120_000).toISOString(),
      });
      const card = testid('confirm-card');
      await card.waitFor();
      assert.deepEqual(await card.locator('dl.params:not(.nested) > dt').allTextContents(), [
        'Customer',
        'Delivery date',
        'Order lines',
      ]);
      assert.equal(
        await card.locator('dl.params:not(.nested) > dd').nth(1).textContent(),
        'Jul 1, 2026',
      );
      const lines = testid('param-table');
      assert.deepEqual(await lines.locator('th').allTextContents(), [
        'Item',
        'Quantity',
        'Unit price',
      ]);
      assert.deepEqual(await lines.locator('tbody td').allTextContents(), [
        'Widget',
        '100',
        '$50.00',
      ]);
      assert.doesNotMatch(String(await card.textContent()), /[{}[\]"]/);
      await screenshot(p, 'confirm-card-lines');

      // Without fields: the keys become labels, the lines a table, a nested record label/value lines.
      await emit({
        type: 'confirm_request',
        conversation_id: 'c1',
        turn_id: 't2',
        token: 'tok-plain',
        action: 'create_sales_order',
        params: {
          customer_id: 1207,
          ship_to: { city: 'Springfield', postal_code: '49007' },
          lines: [{ item: 'Widget', quantity: '100', unit_price: '50' }],
        },
        summary: 'Create a sales order',
        expires_at: new Date(Date.now() + 120_000).toISOString(),
      });
      const plain = p.locator('parley-assistant [data-token="tok-plain"]');
      await plain.waitFor();
      assert.deepEqual(await plain.locator('dl.params:not(.nested) > dt').allTextContents(), [
        'Customer ID',
        'Ship to',
        'Lines',
      ]);
      assert.equal(
        await plain.locator('dl.params:not(.nested) > dd').first().textContent(),
        '1207',
      );
      assert.deepEqual(await plain.locator('dl.nested dt').allTextContents(), [
        'City',
        'Postal code',
      ]);
      assert.deepEqual(await plain.locator('[data-testid="param-table"] th').allTextContents(), [
        'Item',
        'Quantity',
        'Unit price',
      ]);
      assert.doesNotMatch(String(await plain.textContent()), /[{}[\]"]/);
      await context.close();
    });
  },
);
