/**
 * Copilots in the widget, in a real Chromium against the in-page fake server (fake-server.js):
 * the profile switcher and the `profile` attribute, greetings and suggestions, a hand-off note
 * in a second tab, cited answers with their source chips, and confirmation cards that name
 * their host app and warn about destructive actions.
 *
 * Run: node --test client-js/test-browser/   (skipped when no Chromium is found).
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
/** Two profiles, as `ready.profiles` lists them. */
const PROFILES = [
  {
    id: 'finance',
    title: 'Finance copilot',
    description: 'Cash, invoices and purchase orders',
    greeting: 'Hi! Ask me about cash, invoices or purchase orders.',
    suggestions: ["What's our cash balance?", 'Show overdue invoices'],
    default: true,
  },
  {
    id: 'sales',
    title: 'Sales copilot',
    greeting: 'Which customer or deal are we working on?',
    suggestions: ['Show my open deals', 'Check stock of item W-100'],
  },
];

const USAGE = {
  prompt_tokens: 1,
  completion_tokens: 1,
  total_tokens: 2,
  cost: 0,
  model: 'dev',
  estimated: true,
};

/** The widget's local fixture of a cited answer (test/fixtures-views/response-citations.json). */
function citedAnswer() {
  const file = join(CLIENT_DIR, 'test', 'fixtures-views', 'response-citations.json');
  const { frame } = JSON.parse(readFileSync(file, 'utf8'));
  delete frame.seq;
  return frame;
}

/** @param {string} attributes extra attributes of the element */
function page(attributes) {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>copilots</title></head><body>
<script src="/fake-server.js"></script>
<script type="module" src="/client/widget.js"></script>
<parley-assistant token-url="/token" title="Assistant" open ${attributes}></parley-assistant>
</body></html>`;
}

/** Pages by path: the `profile` attribute set, or not. */
const PAGES = {
  '/open': page('suggestions="page suggestion"'),
  '/sales': page('profile="sales"'),
  '/ops': page('profile="ops"'),
};

/** @type {import('./page-server.js').Routes} */
async function routes(request, url, send) {
  const html = /** @type {Record<string, string>} */ (PAGES)[url.pathname];
  if (html) return send(200, 'text/html', html);
  if (url.pathname === '/token') return send(200, 'application/json', '{"token": "t"}');
}

const browserFound = await findChromium();

describe(
  'copilots in the widget',
  { skip: 'missing' in browserFound ? browserFound.missing : false },
  () => {
    const pages = servePages(routes, browserFound);

    /**
     * A tab with the widget, its fake server set to send `snapshot` in every `ready`.
     *
     * @param {any} context
     * @param {string} path
     * @param {Record<string, unknown>} [snapshot]
     */
    async function tab(context, path, snapshot = { profiles: PROFILES }) {
      const p = await context.newPage();
      /** @type {string[]} */
      const problems = [];
      p.on('pageerror', (/** @type {Error} */ error) => problems.push(error.message));
      // Read by fake-server.js, so the very first ready carries the snapshot.
      await p.addInitScript((s) => (window.parleyFakeInit = { snapshot: s }), snapshot);
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
      return { page: p, testid, emit, sent, problems };
    }

    /** @param {any} p @param {string} name */
    async function screenshot(p, name) {
      mkdirSync(ARTIFACTS, { recursive: true });
      await p.screenshot({ path: join(ARTIFACTS, `${name}.png`), animations: 'disabled' });
    }

    test('the switcher picks the profile of a new conversation; only its first message says so', async () => {
      const context = await pages.browser.newContext({ viewport: { width: 1280, height: 800 } });
      const { page: p, testid, sent, problems } = await tab(context, '/open');
      // The ready frame may land after the first render: wait for the profiles to show.
      await testid('profile-bar').waitFor();
      const select = p.getByRole('combobox', { name: 'New conversation with' });
      assert.equal(await select.getAttribute('data-testid'), 'profile-select');
      assert.deepEqual(await select.locator('option').allTextContents(), [
        'Finance copilot',
        'Sales copilot',
      ]);
      // The default profile's greeting and suggestions, not the page's own suggestions.
      assert.equal(await select.inputValue(), 'finance');
      assert.equal(await testid('greeting').textContent(), PROFILES[0].greeting);
      assert.deepEqual(await testid('suggestion').allTextContents(), PROFILES[0].suggestions);
      assert.equal(await testid('profile-label').textContent(), 'Finance copilot');

      await select.selectOption('sales');
      await testid('greeting').filter({ hasText: PROFILES[1].greeting }).waitFor();
      assert.deepEqual(await testid('suggestion').allTextContents(), PROFILES[1].suggestions);
      assert.equal(await testid('profile-label').textContent(), 'Sales copilot');
      await screenshot(p, 'profile-switcher');

      await testid('suggestion').first().click();
      await testid('message-user').waitFor();
      const [first] = await sent('user_message');
      assert.equal(first.text, 'Show my open deals');
      assert.equal(first.profile, 'sales');
      assert.equal(first.conversation_id, undefined);
      // The conversation now exists: no switcher, its profile in the header.
      await testid('profile-bar').waitFor({ state: 'hidden' });
      assert.equal(await testid('profile-label').textContent(), 'Sales copilot');

      await testid('input').fill('and the biggest one?');
      await testid('input').press('Enter');
      await testid('message-user').nth(1).waitFor();
      const second = (await sent('user_message'))[1];
      assert.equal(second.conversation_id, 'c1');
      assert.equal('profile' in second, false);

      // A new conversation offers the switcher again, with the last pick.
      await testid('new-conversation').click();
      await testid('profile-bar').waitFor();
      assert.equal(await select.inputValue(), 'sales');
      assert.deepEqual(problems, []);
      await context.close();
    });

    test("the page's profile attribute; a profile the server refuses is named, and a retry can pick another", async () => {
      const context = await pages.browser.newContext();
      const sales = await tab(context, '/sales');
      await sales.testid('profile-bar').waitFor();
      assert.equal(await sales.page.getByRole('combobox', { name: 'New conversation with' }).inputValue(), 'sales');
      assert.equal(await sales.testid('greeting').textContent(), PROFILES[1].greeting);
      await sales.testid('input').fill('hello');
      await sales.testid('input').press('Enter');
      await sales.testid('message-user').waitFor();
      assert.equal((await sales.sent('user_message'))[0].profile, 'sales');

      // "ops" is not among the user's profiles: the select shows it as it is, the server says no.
      const ops = await tab(context, '/ops');
      await ops.testid('profile-bar').waitFor();
      const select = ops.page.getByRole('combobox', { name: 'New conversation with' });
      assert.equal(await select.inputValue(), 'ops');
      await ops.page.evaluate(() => (window.parleyFake.state.auto = false));
      await ops.testid('input').fill('restart the router');
      await ops.testid('input').press('Enter');
      const [refused] = await ops.sent('user_message');
      assert.equal(refused.profile, 'ops');
      await ops.emit({
        type: 'error',
        code: 'profile_not_found',
        message: "profile 'ops' not found",
        retryable: false,
        ref: refused.client_msg_id,
      });
      await ops.testid('retry').waitFor();
      assert.match(
        String(await ops.testid('message-user').locator('.meta').textContent()),
        /Not sent\. The assistant “ops” isn't available\. Choose another one and send again\./,
      );
      // Refused once more, now as forbidden for a listed profile: its title is named.
      await select.selectOption('sales');
      await ops.testid('retry').click();
      const again = (await ops.sent('user_message')).at(-1);
      assert.equal(again.client_msg_id, refused.client_msg_id);
      assert.equal(again.profile, 'sales');
      await ops.emit({
        type: 'error',
        code: 'forbidden',
        message: "profile 'sales' is not allowed for this user",
        retryable: false,
        ref: refused.client_msg_id,
      });
      await ops.testid('message-user').filter({ hasText: 'Sales copilot' }).waitFor();
      assert.match(
        String(await ops.testid('message-user').locator('.meta').textContent()),
        /You don't have access to the assistant “Sales copilot”/,
      );
      await screenshot(ops.page, 'profile-refused');
      assert.deepEqual([...sales.problems, ...ops.problems], []);
      await context.close();
    });

    test('a hand-off note shows in the other tab too, and the header follows the profile', async () => {
      const context = await pages.browser.newContext();
      const snapshot = {
        profiles: PROFILES,
        conversations: [
          {
            conversation_id: 'c1',
            title: 'Stock',
            status: 'active',
            updated_at: '2026-12-01T10:00:00Z',
            profile: 'finance',
          },
        ],
      };
      const tabs = [await tab(context, '/open', snapshot), await tab(context, '/open', snapshot)];
      const [writer, watcher] = tabs;
      // Both tabs continue the latest conversation, under its stored profile.
      for (const t of tabs) {
        await t.testid('profile-label').filter({ hasText: 'Finance copilot' }).waitFor();
      }
      /** The server's fan-out: every logged frame reaches every tab of the user. */
      const everywhere = async (/** @type {Record<string, unknown>} */ frame) => {
        for (const t of tabs) await t.emit(frame);
      };
      await everywhere({
        type: 'message',
        conversation_id: 'c1',
        message_id: 'u1',
        client_msg_id: 'x1',
        role: 'user',
        text: 'hand me over to sales',
      });
      await everywhere({ type: 'thinking', conversation_id: 'c1', turn_id: 't1' });
      await everywhere({
        type: 'conversation_updated',
        conversation_id: 'c1',
        status: 'active',
        profile: 'sales',
        note: 'Handed over from Finance copilot to Sales copilot: the user asked about stock',
      });
      await everywhere({
        type: 'response',
        conversation_id: 'c1',
        turn_id: 't1',
        message_id: 'a1',
        text: 'Sales copilot here. Which item?',
        usage: USAGE,
      });
      await everywhere({ type: 'turn_end', conversation_id: 'c1', turn_id: 't1', status: 'completed' });
      for (const t of tabs) {
        await t.testid('note').waitFor();
        assert.equal(
          await t.testid('note').textContent(),
          'Handed over from Finance copilot to Sales copilot: the user asked about stock',
        );
        assert.equal(await t.testid('note').getAttribute('role'), 'note');
        await t.testid('profile-label').filter({ hasText: 'Sales copilot' }).waitFor();
      }
      await screenshot(watcher.page, 'handoff-note');

      // The watcher's log is lost: it rebuilds from a snapshot that holds the new profile.
      await watcher.page.evaluate(() => {
        const fake = window.parleyFake;
        fake.state.epoch = 'epoch-2';
        const snap = /** @type {any} */ (fake.state.snapshot);
        snap.conversations[0].profile = 'sales';
        snap.messages = [
          {
            conversation_id: 'c1',
            message_id: 'u1',
            role: 'user',
            text: 'hand me over to sales',
            status: 'completed',
            created_at: '2026-12-01T10:00:00Z',
            client_msg_id: 'x1',
          },
          {
            conversation_id: 'c1',
            message_id: 'a1',
            role: 'assistant',
            text: 'Sales copilot here. Which item?',
            status: 'completed',
            created_at: '2026-12-01T10:00:02Z',
            turn_id: 't1',
          },
        ];
        fake.drop(1012);
      });
      await watcher.page.waitForFunction(() => window.parleyFake.state.sockets.length === 2);
      await watcher.testid('connection-state').and(watcher.page.locator('[data-state="connected"]')).waitFor();
      assert.equal(await watcher.testid('profile-label').textContent(), 'Sales copilot');
      assert.equal(await watcher.testid('note').count(), 1, 'the note seen before stays');
      assert.deepEqual(
        await watcher.page
          .locator('parley-assistant [data-testid="message-list"] > :not(.empty)')
          .evaluateAll((nodes) => nodes.map((n) => n.getAttribute('data-testid'))),
        ['message-user', 'note', 'message-assistant'],
      );
      assert.deepEqual([...writer.problems, ...watcher.problems], []);
      await context.close();
    });

    test('a cited answer: markers lead to source chips; an uncited marker and code stay text', async () => {
      const context = await pages.browser.newContext({ viewport: { width: 1280, height: 800 } });
      const { page: p, testid, emit, problems } = await tab(context, '/open');
      await emit({
        type: 'message',
        conversation_id: 'conv-12',
        message_id: 'u1',
        client_msg_id: 'x1',
        role: 'user',
        text: 'who approves big purchase orders?',
      });
      const answer = citedAnswer();
      // While it streams there are no citations yet: the markers are text.
      await emit({
        type: 'response_delta',
        conversation_id: answer.conversation_id,
        turn_id: answer.turn_id,
        message_id: answer.message_id,
        delta: answer.text,
      });
      const message = testid('message-assistant');
      await message.waitFor();
      assert.equal(await message.locator('[data-testid="cite-ref"]').count(), 0);
      await emit(answer);
      const refs = message.locator('[data-testid="cite-ref"]');
      await refs.first().waitFor();
      assert.deepEqual(await refs.allTextContents(), ['1', '2']);
      assert.equal(await refs.first().getAttribute('aria-label'), 'Source 1: Approval limits');
      assert.equal(await refs.first().evaluate((el) => el.parentElement?.tagName), 'SUP');
      const bubble = message.locator('.bubble');
      assert.equal(await bubble.locator('code').textContent(), '[3]');
      assert.match(String(await bubble.textContent()), /and \[4\] has no source\./);

      const chips = message.locator('[data-testid="source-chip"]');
      assert.equal(await chips.count(), 2);
      const link = chips.nth(0).locator('a');
      assert.equal(await link.textContent(), 'Approval limits');
      assert.equal(await link.getAttribute('href'), 'https://erp.example.com/wiki/approval-limits');
      assert.equal(await link.getAttribute('target'), '_blank');
      assert.equal(await link.getAttribute('rel'), 'noopener noreferrer');
      assert.equal(await chips.nth(1).locator('a').count(), 0, 'no URL: the title is text');
      assert.equal(await chips.nth(1).locator('.source-title').textContent(), 'Delegation of authority');
      assert.equal(
        await chips.nth(1).getAttribute('title'),
        'The CFO approves any single commitment above 100,000 USD.',
      );
      // A marker opens its source's passage and takes the focus there.
      const snippet = chips.nth(1).locator('[data-testid="source-snippet"]');
      assert.equal(await snippet.isVisible(), false);
      await refs.nth(1).click();
      await snippet.waitFor();
      assert.equal(await chips.nth(1).locator('[data-testid="source-toggle"]').getAttribute('aria-expanded'), 'true');
      assert.equal(
        await p.evaluate(() =>
          document.querySelector('parley-assistant')?.shadowRoot?.activeElement?.getAttribute('data-testid'),
        ),
        'source-toggle',
      );
      await screenshot(p, 'citations');
      await chips.nth(1).locator('[data-testid="source-toggle"]').click();
      await snippet.waitFor({ state: 'hidden' });

      // A document link that is not a web page is never made a link.
      await emit({
        type: 'response',
        conversation_id: 'conv-12',
        turn_id: 'turn-8',
        message_id: 'msg-32',
        text: 'See [1].',
        usage: USAGE,
        citations: [
          { n: 1, document_id: 'x', title: 'Sneaky', url: 'javascript:window.pwned=1', snippet: 's' },
        ],
      });
      const second = testid('message-assistant').nth(1);
      await second.locator('[data-testid="source-chip"]').waitFor();
      assert.equal(await second.locator('[data-testid="source-chip"] a').count(), 0);
      assert.equal(await p.evaluate(() => /** @type {any} */ (window).pwned), undefined);
      assert.deepEqual(problems, []);
      await context.close();
    });

    test('a destructive card warns and names its host app, live and after a reload', async () => {
      const context = await pages.browser.newContext({ viewport: { width: 1280, height: 800 } });
      const request = {
        conversation_id: 'c1',
        turn_id: 't1',
        token: 'cf-9',
        action: 'crm__delete_contact',
        params: { contact_id: 'C-17' },
        summary: 'Delete contact C-17 (Dana Reyes)',
        expires_at: new Date(Date.now() + 120_000).toISOString(),
        source: 'crm',
        destructive: true,
      };
      const live = await tab(context, '/open');
      await live.emit({
        type: 'message',
        conversation_id: 'c1',
        message_id: 'u1',
        client_msg_id: 'x1',
        role: 'user',
        text: 'delete contact C-17',
      });
      await live.emit({ type: 'confirm_request', ...request });
      const card = live.testid('confirm-card');
      await card.waitFor();
      assert.equal(await card.locator('.title').textContent(), 'Confirm: delete contactvia crm');
      assert.equal(await live.testid('confirm-source').textContent(), 'via crm');
      assert.equal(
        await live.testid('confirm-warning').textContent(),
        'Warning: this action may delete or overwrite data, and may not be undoable.',
      );
      assert.equal(await live.testid('confirm-warning').isVisible(), true);
      await screenshot(live.page, 'confirm-destructive');

      // A plain action from the same host: its source, no warning.
      await live.emit({
        type: 'confirm_request',
        ...request,
        token: 'cf-10',
        action: 'crm__add_note',
        summary: 'Add a note to C-17',
        destructive: false,
      });
      const plain = live.page.locator('parley-assistant [data-token="cf-10"]');
      await plain.waitFor();
      assert.equal(await plain.locator('[data-testid="confirm-source"]').textContent(), 'via crm');
      assert.equal(await plain.locator('[data-testid="confirm-warning"]').count(), 0);

      // Opened later, the card comes from the snapshot's pending confirmations, the same.
      const later = await tab(context, '/open', {
        profiles: PROFILES,
        conversations: [
          { conversation_id: 'c1', title: 'x', status: 'active', updated_at: '2026-12-01T10:00:00Z' },
        ],
        pending_confirmations: [request],
      });
      await later.testid('confirm-card').waitFor();
      assert.equal(await later.testid('confirm-source').textContent(), 'via crm');
      assert.equal(await later.testid('confirm-warning').isVisible(), true);
      assert.deepEqual([...live.problems, ...later.problems], []);
      await context.close();
    });
  },
);
