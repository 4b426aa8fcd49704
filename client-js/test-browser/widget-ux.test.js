/**
 * The widget's conversations list, "talk to a person", German, and editing a card's params, in a
 * real Chromium against the in-page fake server (fake-server.js) and a small HTTP server that
 * answers the REST calls as the real routes do and records them.
 *
 * Run: node --test client-js/test-browser/widget-ux.test.js   (skipped when no Chromium is found)
 */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { findChromium } from '../test-support/chromium.js';
import { servePages } from './page-server.js';

/** Screenshots go here (git-ignored). */
const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/browser/', import.meta.url));
/** @typedef {{method: string, path: string, auth: string | undefined, body: any}} RestCall */
/** @type {RestCall[]} every REST call the widgets made */
const restCalls = [];

/** Stored messages of c1, as `GET /api/v1/conversations/c1/messages` answers: newest first. */
const C1_MESSAGES = [
  {
    message_id: 'a-old',
    conversation_id: 'c1',
    role: 'assistant',
    text: 'Your cash balance is 318,979.20.',
    status: 'completed',
    created_at: '2026-01-01T00:00:02Z',
  },
  {
    message_id: 'u-old',
    conversation_id: 'c1',
    role: 'user',
    text: "what's our cash balance?",
    status: 'completed',
    created_at: '2026-01-01T00:00:01Z',
  },
];

/** The snapshot of a user with two conversations; the newer one's messages come with it. */
const TWO_CONVERSATIONS = {
  conversations: [
    {
      conversation_id: 'c2',
      title: 'Overdue orders',
      status: 'active',
      updated_at: '2026-01-02T00:00:00Z',
    },
    { conversation_id: 'c1', title: 'Cash', status: 'active', updated_at: '2026-01-01T00:00:00Z' },
  ],
  messages: [
    {
      conversation_id: 'c2',
      message_id: 'u-c2',
      role: 'user',
      text: 'show overdue purchase orders',
      status: 'completed',
      created_at: '2026-01-02T00:00:00Z',
    },
  ],
};

/**
 * @param {string} attributes extra attributes of the element
 * @param {object} [snapshot] extra fields of the fake server's first `ready`
 */
function page(attributes, snapshot = {}) {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>widget ux test</title></head><body>
<script>window.parleyFakeInit = { snapshot: ${JSON.stringify(snapshot)} };</script>
<script src="/fake-server.js"></script>
<script type="module" src="/client/widget.js"></script>
<parley-assistant token-url="/token" title="Test Assistant" open ${attributes}></parley-assistant>
</body></html>`;
}

/** @type {Record<string, string>} */
const PAGES = {
  '/en': page(''),
  '/de': page('lang="de"'),
  '/locale-de': page('', { locale: 'de-DE' }),
  '/two': page('', TWO_CONVERSATIONS),
};

/** @type {import('./page-server.js').Routes} */
async function routes(request, url, send) {
  if (PAGES[url.pathname]) return send(200, 'text/html', PAGES[url.pathname]);
  if (url.pathname === '/token') {
    return send(200, 'application/json', JSON.stringify({ token: 'test-token' }));
  }
  if (url.pathname.startsWith('/api/v1/conversations/')) {
    let text = '';
    for await (const chunk of request) text += chunk;
    restCalls.push({
      method: request.method ?? '',
      path: url.pathname + url.search,
      auth: request.headers.authorization,
      body: text ? JSON.parse(text) : undefined,
    });
    if (request.headers.authorization !== 'Bearer test-token') {
      return send(401, 'application/json', '{"code": "unauthenticated"}');
    }
    if (request.method === 'GET' && url.pathname.endsWith('/c1/messages')) {
      return send(200, 'application/json', JSON.stringify({ items: C1_MESSAGES }));
    }
    if (request.method === 'GET') {
      return send(200, 'application/json', JSON.stringify({ items: [] }));
    }
    return send(request.method === 'POST' ? 201 : 200, 'application/json', '{}');
  }
}

/**
 * A sales order card: a money field, a number field and a text the fields do not name.
 *
 * @param {string} token
 */
function salesOrderCard(token) {
  return {
    type: 'confirm_request',
    conversation_id: 'c1',
    turn_id: 't1',
    token,
    action: 'create_sales_order',
    params: { customer: 'Acme', quantity: 100, unit_price: '12400.50' },
    summary: 'Sales order for Acme: 100 × Widget',
    expires_at: new Date(Date.now() + 240_000).toISOString(),
    fields: [
      { key: 'customer', label: 'Customer', type: 'text' },
      { key: 'quantity', label: 'Quantity', type: 'number' },
      { key: 'unit_price', label: 'Unit price', type: 'money', currency: 'EUR' },
    ],
  };
}

const browserFound = await findChromium();

describe(
  'the widget: conversations, a person, German, editable cards',
  { skip: 'missing' in browserFound ? browserFound.missing : false },
  () => {
    const pages = servePages(routes, browserFound);
    before(() => mkdirSync(ARTIFACTS, { recursive: true }));

    /** @param {string} path one of PAGES */
    async function open(path) {
      const context = await pages.browser.newContext({ viewport: { width: 1000, height: 800 } });
      const p = await context.newPage();
      /** @type {string[]} */
      const problems = [];
      p.on('pageerror', (/** @type {Error} */ error) => problems.push(error.message));
      await p.goto(pages.origin + path);
      await p.waitForFunction(
        () =>
          /** @type {any} */ (document.querySelector('parley-assistant'))?.client?.state ===
          'connected',
      );
      /** @param {string} id */
      const testid = (id) => p.locator(`parley-assistant [data-testid="${id}"]`);
      /** @param {Record<string, unknown>} frame */
      const emit = (frame) =>
        p.evaluate((f) => /** @type {any} */ (window).parleyFake.emit(f), frame);
      /** @param {string} [type] */
      const sent = (type) =>
        p.evaluate((t) => /** @type {any} */ (window).parleyFake.sent(t), type);
      /** @param {string} name */
      const screenshot = (name) =>
        testid('panel').screenshot({
          path: join(ARTIFACTS, `${name}.png`),
          animations: 'disabled',
        });
      return { page: p, context, testid, emit, sent, problems, screenshot };
    }

    test('lang="de" speaks German and formats numbers and money the German way', async () => {
      const { context, testid, emit, problems, screenshot } = await open('/de');
      assert.equal(await testid('input').getAttribute('placeholder'), 'Fragen Sie etwas…');
      assert.equal(await testid('send').textContent(), 'Senden');
      assert.equal(await testid('connection-state').textContent(), 'Online');
      assert.equal(await testid('new-conversation').getAttribute('aria-label'), 'Neues Gespräch');
      await testid('input').fill('Auftrag anlegen');
      await testid('input').press('Enter');
      await testid('message-user').waitFor();
      await emit(salesOrderCard('tok-de'));
      await testid('confirm-card').waitFor();
      assert.equal(await testid('approve').textContent(), 'Genehmigen');
      assert.equal(await testid('reject').textContent(), 'Ablehnen');
      assert.match(String(await testid('countdown').textContent()), /^Läuft ab in \d:\d\d$/);
      const params = String(await testid('confirm-card').locator('dl').textContent());
      assert.match(params, /Unit price\s*12\.400,50\s€/);
      await screenshot('ux-german-card');
      await emit({ type: 'confirm_resolved', token: 'tok-de', status: 'rejected' });
      await testid('action-result')
        .filter({ hasText: 'Abgelehnt. Es wurde nichts getan.' })
        .waitFor();
      assert.deepEqual(problems, []);
      await context.close();
    });

    test('without lang the widget speaks the locale ready brings', async () => {
      const { context, testid } = await open('/locale-de');
      await testid('send').filter({ hasText: 'Senden' }).waitFor();
      assert.equal(
        await testid('input').getAttribute('aria-label'),
        'Nachricht an den Assistenten',
      );
      await context.close();
      const english = await open('/en');
      assert.equal(await english.testid('send').textContent(), 'Send');
      await english.context.close();
    });

    test('a card is edited, checked here, refused by the server, then approved with the new values', async () => {
      const { page: p, context, testid, emit, sent, problems, screenshot } = await open('/en');
      await testid('input').fill('create a sales order');
      await testid('input').press('Enter');
      await testid('message-user').waitFor();
      await emit(salesOrderCard('tok-edit'));
      await emit({
        type: 'turn_end',
        conversation_id: 'c1',
        turn_id: 't1',
        status: 'completed',
        awaiting: ['tok-edit'],
      });
      await testid('edit').click();
      await testid('param-form').waitFor();
      // A plain mistake is named on the card and nothing is sent.
      await testid('param-input-quantity').fill('lots');
      await testid('approve').click();
      await testid('card-error').filter({ hasText: 'Quantity: must be a number' }).waitFor();
      assert.deepEqual(await sent('confirm'), []);
      // A number goes to the server with every param, edited or not.
      await testid('param-input-quantity').fill('120');
      await testid('approve').click();
      assert.deepEqual(await sent('confirm'), [
        {
          type: 'confirm',
          token: 'tok-edit',
          decision: 'approve',
          params: { customer: 'Acme', quantity: 120, unit_price: '12400.50' },
        },
      ]);
      // The server's own check refuses it: the card says why and takes a new decision.
      await emit({
        type: 'error',
        code: 'invalid_params',
        message: 'quantity: must be less than or equal to 110',
        retryable: false,
        ref: 'tok-edit',
      });
      await testid('card-error')
        .filter({ hasText: 'quantity: must be less than or equal to 110' })
        .waitFor();
      assert.equal(await testid('approve').isEnabled(), true);
      assert.equal(await testid('error').isVisible(), false);
      await screenshot('ux-card-invalid-params');
      // Back to the proposed value: an unchanged approval carries no params.
      await testid('param-input-quantity').fill('100');
      await testid('approve').click();
      const confirms = await sent('confirm');
      assert.deepEqual(confirms[1], { type: 'confirm', token: 'tok-edit', decision: 'approve' });
      // Another tab's approval of edited values: the card shows what was approved.
      await emit({
        type: 'confirm_resolved',
        token: 'tok-edit',
        status: 'approved',
        params: { customer: 'Acme', quantity: 105, unit_price: '12400.50' },
        summary: 'Sales order for Acme: 105 × Widget',
      });
      await testid('confirm-summary').filter({ hasText: '105 × Widget' }).waitFor();
      assert.match(
        String(await testid('confirm-card').locator('dl.params').textContent()),
        /Quantity\s*105/,
      );
      assert.equal(await testid('card-error').isVisible(), false);
      assert.equal(
        await p.locator('parley-assistant [data-testid="param-form"]').isVisible(),
        false,
      );
      assert.deepEqual(problems, []);
      await context.close();
    });

    test('a card waiting after turn_end blocks neither typing nor sending', async () => {
      const { context, testid, emit, sent } = await open('/en');
      await testid('input').fill('approve PO-1001');
      await testid('input').press('Enter');
      await testid('message-user').waitFor();
      await emit({ type: 'thinking', conversation_id: 'c1', turn_id: 't1' });
      await emit(salesOrderCard('tok-wait'));
      await emit({
        type: 'turn_end',
        conversation_id: 'c1',
        turn_id: 't1',
        status: 'completed',
        awaiting: ['tok-wait'],
      });
      await testid('typing').waitFor({ state: 'hidden' });
      assert.equal(await testid('input').isEditable(), true);
      await testid('input').fill("what's our cash balance?");
      await testid('input').press('Enter');
      await testid('message-user').nth(1).waitFor();
      const messages = await sent('user_message');
      assert.equal(messages.length, 2);
      assert.equal(messages[1].conversation_id, 'c1');
      assert.equal(await testid('approve').isEnabled(), true);
      await context.close();
    });

    test('the conversations list: newest first, switch loads history, unread, rename, archive', async () => {
      restCalls.length = 0;
      const { page: p, context, testid, emit, problems, screenshot } = await open('/two');
      // The newest conversation is on screen with the snapshot's messages.
      await testid('message-user').filter({ hasText: 'show overdue purchase orders' }).waitFor();
      await testid('conversations').click();
      await testid('conversation-list').waitFor();
      assert.deepEqual(await testid('conversation-item').allTextContents(), [
        'Overdue orders',
        'Cash',
      ]);
      assert.equal(await testid('conversation-item').first().getAttribute('aria-current'), 'true');
      // Switching loads the stored messages the snapshot left out, with the socket's token.
      await testid('conversation-item').filter({ hasText: 'Cash' }).click();
      await testid('conversation-list').waitFor({ state: 'hidden' });
      await testid('message-assistant')
        .filter({ hasText: 'Your cash balance is 318,979.20.' })
        .waitFor();
      assert.deepEqual(await testid('message-user').allTextContents(), [
        "what's our cash balance?",
      ]);
      assert.deepEqual(
        restCalls.map((call) => [call.method, call.path, call.auth]),
        [['GET', '/api/v1/conversations/c1/messages?limit=50', 'Bearer test-token']],
      );
      // An answer in the conversation not on screen marks it unread.
      await emit({
        type: 'response',
        conversation_id: 'c2',
        turn_id: 't9',
        message_id: 'a-c2',
        text: 'Two are overdue.',
        usage: {
          prompt_tokens: 1,
          completion_tokens: 1,
          total_tokens: 2,
          cost: 0,
          model: 'dev',
          estimated: true,
        },
      });
      await testid('conversations').and(p.locator('[data-unread]')).waitFor();
      await testid('conversations').click();
      await testid('unread').waitFor();
      assert.equal(
        await p
          .locator('parley-assistant li[data-unread] [data-testid="conversation-item"]')
          .textContent(),
        'Overdue ordersnew activity',
      );
      await screenshot('ux-conversation-list');
      // Rename: a PATCH; the title changes when the server's conversation_updated says so.
      await testid('conversation-rename').last().click();
      await testid('conversation-title-input').fill('Cash questions');
      await testid('conversation-save').click();
      await p.waitForFunction(() => true);
      await emit({
        type: 'conversation_updated',
        conversation_id: 'c1',
        status: 'active',
        title: 'Cash questions',
      });
      await testid('conversation-item').filter({ hasText: 'Cash questions' }).waitFor();
      // Archive: a PATCH; the conversation leaves the list when the server says it is archived.
      await testid('conversation-archive').first().click();
      await emit({
        type: 'conversation_updated',
        conversation_id: 'c2',
        status: 'archived',
        title: 'Overdue orders',
      });
      await testid('conversation-item')
        .filter({ hasText: 'Overdue orders' })
        .waitFor({ state: 'detached' });
      const changes = restCalls.filter((call) => call.method === 'PATCH');
      assert.deepEqual(
        changes.map((call) => [call.path, call.body, call.auth]),
        [
          ['/api/v1/conversations/c1', { title: 'Cash questions' }, 'Bearer test-token'],
          ['/api/v1/conversations/c2', { archived: true }, 'Bearer test-token'],
        ],
      );
      // The conversation on screen archived elsewhere: this tab leaves it too.
      await emit({
        type: 'conversation_updated',
        conversation_id: 'c1',
        status: 'archived',
        title: 'Cash questions',
      });
      await testid('message-user')
        .filter({ hasText: "what's our cash balance?" })
        .waitFor({ state: 'detached' });
      assert.deepEqual(problems, []);
      await context.close();
    });

    test('"talk to a person" escalates the conversation and shows it escalated', async () => {
      restCalls.length = 0;
      const { context, testid, emit, problems, screenshot } = await open('/two');
      await testid('escalate').waitFor();
      assert.equal(await testid('escalate').textContent(), 'Talk to a person');
      await testid('escalate').click();
      await testid('escalate').filter({ hasText: 'Talk to a person' }).waitFor();
      assert.deepEqual(
        restCalls.map((call) => [call.method, call.path, call.body]),
        [
          [
            'POST',
            '/api/v1/conversations/c2/escalate',
            { reason: 'The user asked to talk to a person from the assistant.' },
          ],
        ],
      );
      // Every tab learns it from the server's frame.
      await emit({
        type: 'conversation_updated',
        conversation_id: 'c2',
        status: 'escalated',
        title: 'Overdue orders',
      });
      await testid('escalated').waitFor();
      assert.equal(
        await testid('escalated').textContent(),
        'A person has been asked to take over this conversation.',
      );
      assert.equal(await testid('escalate').isVisible(), false);
      await testid('conversations').click();
      await testid('escalated-tag').waitFor();
      await screenshot('ux-escalated');
      assert.deepEqual(problems, []);
      await context.close();
    });
  },
);
