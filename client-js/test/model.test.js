import assert from 'node:assert/strict';
import { test } from 'node:test';

import { ConversationModel } from '../model.js';
import { readyFrame } from './fake-websocket.js';

const C = 'conv-1';
const T = 'turn-1';
const usage = {
  prompt_tokens: 10,
  completion_tokens: 5,
  total_tokens: 15,
  cost: 0.0001,
  model: 'dev',
  estimated: true,
};

/** A model with a counter of change events. */
function modelWithChanges() {
  const model = new ConversationModel();
  /** @type {any[]} */
  const changes = [];
  model.addEventListener('change', (event) =>
    changes.push(/** @type {CustomEvent} */ (event).detail),
  );
  return { model, changes };
}

test('streamed deltas assemble by message_id and the response sets the final text', () => {
  const { model, changes } = modelWithChanges();
  model.apply({ type: 'thinking', conversation_id: C, turn_id: T, status: 'looking up cash' });
  assert.equal(model.activeTurn(C)?.status, 'looking up cash');
  for (const delta of ['Your ', 'cash ', 'balance ', 'is **$1.2M**.']) {
    model.apply({
      type: 'response_delta',
      conversation_id: C,
      turn_id: T,
      message_id: 'a1',
      delta,
    });
  }
  const message = model.message('a1');
  assert.equal(message?.text, 'Your cash balance is **$1.2M**.');
  assert.equal(message?.status, 'streaming');
  assert.equal(message?.role, 'assistant');
  model.apply({
    type: 'response',
    conversation_id: C,
    turn_id: T,
    message_id: 'a1',
    text: 'Your cash balance is $1.2M.',
    usage,
  });
  assert.equal(message?.text, 'Your cash balance is $1.2M.', 'the final text wins over the deltas');
  assert.equal(message?.status, 'complete');
  assert.deepEqual(message?.usage, usage);
  model.apply({ type: 'turn_end', conversation_id: C, turn_id: T, status: 'completed' });
  assert.equal(model.activeTurn(C), undefined);
  assert.equal(model.conversation(C)?.items.length, 1);
  assert.ok(changes.every((c) => c.conversationId === C));
  assert.equal(changes.length, 7);
});

test('deltas of two conversations do not mix', () => {
  const { model } = modelWithChanges();
  model.apply({
    type: 'response_delta',
    conversation_id: 'a',
    turn_id: 'ta',
    message_id: 'ma',
    delta: 'one ',
  });
  model.apply({
    type: 'response_delta',
    conversation_id: 'b',
    turn_id: 'tb',
    message_id: 'mb',
    delta: 'uno ',
  });
  model.apply({
    type: 'response_delta',
    conversation_id: 'a',
    turn_id: 'ta',
    message_id: 'ma',
    delta: 'two',
  });
  model.apply({
    type: 'response_delta',
    conversation_id: 'b',
    turn_id: 'tb',
    message_id: 'mb',
    delta: 'dos',
  });
  assert.equal(model.message('ma')?.text, 'one two');
  assert.equal(model.message('mb')?.text, 'uno dos');
});

test('a cancelled or interrupted turn keeps its partial text with that status', () => {
  const { model } = modelWithChanges();
  model.apply({
    type: 'response_delta',
    conversation_id: C,
    turn_id: 't1',
    message_id: 'm1',
    delta: 'Half an ans',
  });
  model.apply({ type: 'turn_end', conversation_id: C, turn_id: 't1', status: 'cancelled' });
  assert.deepEqual(
    [model.message('m1')?.text, model.message('m1')?.status],
    ['Half an ans', 'cancelled'],
  );
  model.apply({
    type: 'response_delta',
    conversation_id: C,
    turn_id: 't2',
    message_id: 'm2',
    delta: 'Cut',
  });
  model.apply({ type: 'turn_end', conversation_id: C, turn_id: 't2', status: 'interrupted' });
  assert.equal(model.message('m2')?.status, 'interrupted');
});

test("turn_end's error tells every tab why the answer stopped", () => {
  const { model } = modelWithChanges();
  model.apply({ type: 'response_delta', conversation_id: C, turn_id: T, message_id: 'm3', delta: 'Par' });
  model.apply({
    type: 'turn_end',
    conversation_id: C,
    turn_id: T,
    status: 'interrupted',
    error: { code: 'turn_interrupted', message: 'the worker stopped', retryable: true },
  });
  const message = model.message('m3');
  assert.equal(message?.status, 'interrupted');
  assert.deepEqual(message?.error, {
    type: 'error',
    code: 'turn_interrupted',
    message: 'the worker stopped',
    retryable: true,
  });
});

test('tool calls show as progress lines updated by their results', () => {
  const { model } = modelWithChanges();
  model.apply({
    type: 'tool_call',
    conversation_id: C,
    turn_id: T,
    call_id: 'k1',
    name: 'list_purchase_orders',
    arguments: { status: 'overdue' },
  });
  model.apply({
    type: 'tool_call',
    conversation_id: C,
    turn_id: T,
    call_id: 'k2',
    name: 'cash_balance',
    arguments: {},
  });
  const [first, second] = model.conversation(C)?.items ?? [];
  assert.equal(first.kind, 'tool');
  assert.equal(first.kind === 'tool' && first.status, 'running');
  model.apply({
    type: 'tool_result',
    conversation_id: C,
    turn_id: T,
    call_id: 'k1',
    name: 'list_purchase_orders',
    ok: true,
    summary: '3 overdue orders',
  });
  assert.deepEqual(first.kind === 'tool' && [first.status, first.summary], [
    'ok',
    '3 overdue orders',
  ]);
  model.apply({ type: 'turn_end', conversation_id: C, turn_id: T, status: 'failed' });
  assert.equal(
    second.kind === 'tool' && second.status,
    'failed',
    'a tool left running when its turn ends did not finish',
  );
});

test('a confirmation is requested, decided and executed, seen by the same item', () => {
  const { model } = modelWithChanges();
  const request = {
    type: /** @type {const} */ ('confirm_request'),
    conversation_id: C,
    turn_id: T,
    token: 'tok-1',
    action: 'approve_purchase_order',
    params: { po: 'PO-1001', amount: 12500 },
    summary: 'Approve PO-1001 for $12,500',
    expires_at: '2026-11-22T17:00:00Z',
  };
  model.apply(request);
  model.apply(request);
  const item = model.confirmations.get('tok-1');
  assert.equal(model.conversation(C)?.items.length, 1, 'a repeated request adds nothing');
  assert.equal(item?.status, 'pending');
  model.apply({ type: 'confirm_resolved', token: 'tok-1', status: 'approved' });
  assert.equal(item?.status, 'approved');
  model.apply({
    type: 'action_executed',
    token: 'tok-1',
    action: 'approve_purchase_order',
    ok: true,
    result: { status: 'approved' },
    audit_id: 'aud-9',
  });
  assert.deepEqual(item?.outcome, { ok: true, result: { status: 'approved' }, auditId: 'aud-9' });
  assert.equal(model.conversation(C)?.items[0], item);
});

test('an outcome that overtakes the decision still marks the confirmation approved', () => {
  const { model } = modelWithChanges();
  model.apply({
    type: 'confirm_request',
    conversation_id: C,
    turn_id: T,
    token: 't',
    action: 'a',
    params: {},
    summary: 's',
    expires_at: '2026-11-22T17:00:00Z',
  });
  model.apply({
    type: 'action_executed',
    token: 't',
    action: 'a',
    ok: false,
    result: 'PO already closed',
    audit_id: 'x',
  });
  assert.equal(model.confirmations.get('t')?.status, 'approved');
  assert.equal(
    model.apply({ type: 'confirm_resolved', token: 'unknown', status: 'expired' }),
    false,
  );
});

test('pending user messages are replaced by their mirrored message', () => {
  const { model } = modelWithChanges();
  model.addPending({
    type: 'user_message',
    client_msg_id: 'cm-1',
    text: 'approve PO-1001',
    context: { screen: 'po' },
  });
  assert.deepEqual(
    model.pendingFor(undefined).map((m) => m.text),
    ['approve PO-1001'],
  );
  assert.deepEqual(model.pendingFor(C), []);
  const mirrored = {
    type: /** @type {const} */ ('message'),
    conversation_id: C,
    message_id: 'u1',
    client_msg_id: 'cm-1',
    role: 'user',
    text: 'approve PO-1001',
  };
  model.apply(mirrored);
  model.apply(mirrored);
  assert.equal(model.pending.size, 0);
  const items = model.conversation(C)?.items ?? [];
  assert.equal(items.length, 1, 'a replayed message is not shown twice');
  assert.deepEqual(items[0].kind === 'message' && [items[0].status, items[0].context], [
    'sent',
    { screen: 'po' },
  ]);
});

test('a snapshot rebuilds conversations, messages, turns and pending confirmations', () => {
  const { model, changes } = modelWithChanges();
  model.apply({
    type: 'response_delta',
    conversation_id: 'stale',
    turn_id: 'x',
    message_id: 'y',
    delta: 'old',
  });
  model.addPending({ type: 'user_message', client_msg_id: 'cm-keep', text: 'still mine' });
  model.reset(
    /** @type {any} */ (
      readyFrame({
        conversations: [
          {
            conversation_id: C,
            title: 'Purchase orders',
            status: 'active',
            updated_at: '2026-11-22T16:00:00Z',
          },
        ],
        messages: [
          {
            conversation_id: C,
            message_id: 'u1',
            role: 'user',
            text: 'approve PO-1001',
            status: 'completed',
            created_at: '2026-11-22T16:00:00Z',
            client_msg_id: 'cm-1',
          },
          {
            conversation_id: C,
            message_id: 'tool1',
            role: 'tool',
            text: '{"ok":true}',
            status: 'complete',
            created_at: '2026-11-22T16:00:01Z',
          },
          {
            conversation_id: C,
            message_id: 'a1',
            role: 'assistant',
            text: 'Approving needs your OK.',
            status: 'weird',
            created_at: '2026-11-22T16:00:02Z',
            turn_id: T,
          },
        ],
        pending_confirmations: [
          {
            token: 'tok',
            conversation_id: C,
            turn_id: T,
            action: 'approve_purchase_order',
            params: { po: 'PO-1001' },
            summary: 'Approve PO-1001',
            expires_at: '2026-11-22T16:05:00Z',
          },
        ],
        active_turns: [
          {
            conversation_id: C,
            turn_id: T,
            message_id: 'a2',
            text: 'Waiting for',
            status: 'waiting for approval',
          },
        ],
      })
    ),
  );
  assert.deepEqual(model.user, { id: 'alice', tenant: 'acme', roles: ['admin'], name: 'Alice' });
  assert.deepEqual([...model.conversations.keys()], [C]);
  const conversation = model.conversation(C);
  assert.equal(conversation?.title, 'Purchase orders');
  assert.deepEqual(
    conversation?.items.map((item) => `${item.kind}:${item.id}`),
    ['message:u1', 'message:a1', 'message:a2', 'confirmation:tok'],
  );
  assert.equal(model.message('a1')?.status, 'complete', 'unknown statuses count as finished');
  assert.equal(model.message('u1')?.status, 'sent');
  assert.equal(model.message('a2')?.status, 'streaming');
  assert.equal(model.activeTurn(C)?.status, 'waiting for approval');
  assert.equal(model.message('y'), undefined);
  assert.deepEqual([...model.pending.keys()], ['cm-keep'], 'unsent messages survive a reset');
  assert.equal(changes.at(-1).reason, 'reset');
  model.apply({
    type: 'response_delta',
    conversation_id: C,
    turn_id: T,
    message_id: 'a2',
    delta: ' you.',
  });
  assert.equal(model.message('a2')?.text, 'Waiting for you.');
});

test('typing from another tab and conversation updates', () => {
  const { model } = modelWithChanges();
  model.apply({ type: 'typing', conversation_id: C, active: true, seq: 3 });
  assert.equal(model.conversation(C)?.otherTabTyping, true);
  model.apply({ type: 'typing', conversation_id: C, active: false });
  assert.equal(model.conversation(C)?.otherTabTyping, false);
  model.apply({
    type: 'conversation_updated',
    conversation_id: C,
    status: 'archived',
    title: 'Q3 cash',
  });
  assert.deepEqual(
    [model.conversation(C)?.status, model.conversation(C)?.title],
    ['archived', 'Q3 cash'],
  );
});

test('frames that do not touch the model report no change', () => {
  const { model, changes } = modelWithChanges();
  assert.equal(model.apply({ type: 'pong', t: 1 }), false);
  assert.equal(
    model.apply({ type: 'error', code: 'rate_limited', message: 'slow down', retryable: true }),
    false,
  );
  assert.equal(changes.length, 0);
});

test('stored message statuses map onto the model statuses', () => {
  const { model } = modelWithChanges();
  const stored = (id, role, status) => ({
    conversation_id: C,
    message_id: id,
    role,
    text: id,
    status,
    created_at: '2026-11-22T16:00:00Z',
  });
  model.reset(
    /** @type {any} */ (
      readyFrame({
        messages: [
          stored('a', 'assistant', 'completed'),
          stored('b', 'assistant', 'failed'),
          stored('c', 'assistant', 'interrupted'),
          stored('d', 'assistant', 'cancelled'),
          stored('e', 'user', 'completed'),
          stored('f', 'assistant', 'streaming'),
          stored('g', 'assistant', 'streaming'),
        ],
        // Only g's turn still runs; f was left streaming by a process that is gone.
        active_turns: [
          { conversation_id: C, turn_id: 'tg', message_id: 'g', text: 'g so far', status: 'x' },
        ],
      })
    ),
  );
  assert.deepEqual(
    ['a', 'b', 'c', 'd', 'e', 'f', 'g'].map((id) => model.message(id)?.status),
    ['complete', 'interrupted', 'interrupted', 'cancelled', 'sent', 'interrupted', 'streaming'],
  );
  assert.equal(model.message('g')?.text, 'g so far');
});

const PROFILES = [
  { id: 'sales', title: 'Sales copilot', greeting: 'Hi!', suggestions: ['Open deals'] },
  { id: 'ops', title: 'Ops copilot', default: true },
];

test('profiles come with ready; a resumed ready without them keeps the list', () => {
  const { model } = modelWithChanges();
  model.reset(/** @type {any} */ (readyFrame({ profiles: PROFILES })));
  assert.deepEqual(
    model.profiles.map((p) => p.id),
    ['sales', 'ops'],
  );
  assert.equal(model.profile('sales')?.greeting, 'Hi!');
  assert.equal(model.profile('nope'), undefined);
  assert.equal(model.defaultProfile?.id, 'ops');
  model.refresh(/** @type {any} */ (readyFrame({ resumed: true })));
  assert.equal(model.profiles.length, 2);
  model.refresh(/** @type {any} */ (readyFrame({ resumed: true, profiles: [PROFILES[0]] })));
  assert.deepEqual(
    model.profiles.map((p) => p.id),
    ['sales'],
  );
});

test('a conversation started without a profile runs under the default one', () => {
  const { model } = modelWithChanges();
  model.reset(/** @type {any} */ (readyFrame({ profiles: PROFILES })));
  model.addPending({ type: 'user_message', client_msg_id: 'x1', text: 'hi' });
  model.apply({
    type: 'message',
    conversation_id: 'c7',
    message_id: 'm1',
    client_msg_id: 'x1',
    role: 'user',
    text: 'hi',
  });
  assert.equal(model.conversation('c7')?.profile, 'ops');
  // A message another tab started: this tab cannot know its profile and does not guess.
  model.apply({
    type: 'message',
    conversation_id: 'c8',
    message_id: 'm2',
    client_msg_id: 'other-tab',
    role: 'user',
    text: 'hello',
  });
  assert.equal(model.conversation('c8')?.profile, undefined);
});

test('a hand-off note is kept once, moves the profile and survives a rebuild', () => {
  const { model, changes } = modelWithChanges();
  model.reset(
    /** @type {any} */ (
      readyFrame({
        profiles: PROFILES,
        conversations: [
          { conversation_id: C, title: 'Outage', status: 'active', updated_at: 'x', profile: 'sales' },
        ],
      })
    ),
  );
  assert.equal(model.conversation(C)?.profile, 'sales');
  model.apply({ type: 'thinking', conversation_id: C, turn_id: T });
  const handoff = {
    type: /** @type {const} */ ('conversation_updated'),
    conversation_id: C,
    status: 'active',
    profile: 'ops',
    note: 'Handed over from Sales copilot to Ops copilot: a site is down',
    seq: 12,
  };
  assert.equal(model.apply(handoff), true);
  model.apply(handoff);
  const notes = () => model.conversation(C)?.items.filter((item) => item.kind === 'note') ?? [];
  assert.equal(notes().length, 1, 'the same logged frame twice adds one note');
  assert.equal(notes()[0].text, 'Handed over from Sales copilot to Ops copilot: a site is down');
  assert.equal(model.conversation(C)?.profile, 'ops');
  assert.equal(changes.at(-1).conversationId, C);
  // A rename without a note adds no line.
  model.apply({ type: 'conversation_updated', conversation_id: C, status: 'active', title: 'x' });
  assert.equal(notes().length, 1);

  model.apply({
    type: 'response',
    conversation_id: C,
    turn_id: T,
    message_id: 'a1',
    text: 'The ops copilot here.',
    usage,
  });
  // The log was lost: the snapshot has the messages and the current profile, not the note.
  model.reset(
    /** @type {any} */ (
      readyFrame({
        epoch: 'e2',
        profiles: PROFILES,
        conversations: [
          { conversation_id: C, title: 'Outage', status: 'active', updated_at: 'y', profile: 'ops' },
        ],
        messages: [
          {
            conversation_id: C,
            message_id: 'a1',
            role: 'assistant',
            text: 'The ops copilot here.',
            status: 'completed',
            created_at: 'z',
            turn_id: T,
          },
        ],
      })
    ),
  );
  assert.equal(model.conversation(C)?.profile, 'ops');
  assert.deepEqual(
    model.conversation(C)?.items.map((item) => item.kind),
    ['note', 'message'],
    'the note stays before the answer of its turn',
  );
  // Seq numbering starts afresh in the new epoch: a new note with seq 12 is not a duplicate.
  model.apply({ ...handoff, profile: 'sales', note: 'Handed back to Sales copilot' });
  assert.equal(notes().length, 2);
});

test('a stored hand-off note in the snapshot shows in a fresh tab, and once in a seen one', () => {
  const note = 'Handed over from Sales copilot to Ops copilot: a site is down';
  const ready = readyFrame({
    profiles: PROFILES,
    conversations: [
      { conversation_id: C, title: 'Outage', status: 'active', updated_at: 'y', profile: 'ops' },
    ],
    messages: [
      {
        conversation_id: C,
        message_id: 'u1',
        role: 'user',
        text: 'a site is down',
        status: 'completed',
        created_at: 'a',
        client_msg_id: 'k1',
      },
      {
        conversation_id: C,
        message_id: 'a1',
        role: 'assistant',
        text: 'The ops copilot here.',
        status: 'completed',
        created_at: 'b',
        turn_id: T,
      },
      // Stored when the turn handed over, so after its answer began: it goes before it.
      {
        conversation_id: C,
        message_id: 'n1',
        role: 'note',
        text: note,
        status: 'completed',
        created_at: 'c',
        turn_id: T,
      },
    ],
  });
  /** @param {any} model */
  const kinds = (model) =>
    model.conversation(C)?.items.map((/** @type {any} */ item) => `${item.kind}:${item.role ?? ''}`);

  const fresh = modelWithChanges().model;
  fresh.reset(/** @type {any} */ (ready));
  assert.deepEqual(kinds(fresh), ['message:user', 'note:', 'message:assistant']);
  assert.equal(fresh.conversation(C)?.items[1].text, note);

  // A tab that saw the frame live and then rebuilds keeps one copy, not two.
  const seen = modelWithChanges().model;
  seen.apply({ type: 'thinking', conversation_id: C, turn_id: T });
  seen.apply({
    type: 'conversation_updated',
    conversation_id: C,
    status: 'active',
    profile: 'ops',
    note,
    seq: 4,
  });
  seen.reset(/** @type {any} */ ({ ...ready, epoch: 'e2' }));
  assert.deepEqual(kinds(seen), ['message:user', 'note:', 'message:assistant']);
});

test('citations of an answer are kept, from the response and from the snapshot', () => {
  const { model } = modelWithChanges();
  const citations = [
    { n: 1, document_id: 'policy.md', title: 'Purchasing policy', snippet: 'Up to 5,000.' },
  ];
  model.apply({
    type: 'response',
    conversation_id: C,
    turn_id: T,
    message_id: 'a1',
    text: 'Up to 5,000 [1].',
    usage,
    citations,
  });
  assert.deepEqual(model.message('a1')?.citations, citations);
  model.reset(
    /** @type {any} */ (
      readyFrame({
        messages: [
          {
            conversation_id: C,
            message_id: 'a1',
            role: 'assistant',
            text: 'Up to 5,000 [1].',
            status: 'completed',
            created_at: 'z',
            turn_id: T,
            citations,
          },
        ],
      })
    ),
  );
  assert.deepEqual(model.message('a1')?.citations, citations);
});

test('a confirmation keeps its source and destructive flag, live and from the snapshot', () => {
  const { model } = modelWithChanges();
  const request = {
    conversation_id: C,
    turn_id: T,
    token: 'cf-1',
    action: 'crm__delete_contact',
    params: { contact_id: 'C-17' },
    summary: 'Delete contact C-17',
    expires_at: '2026-11-22T16:46:01Z',
    source: 'crm',
    destructive: true,
  };
  model.apply({ type: 'confirm_request', ...request });
  assert.equal(model.confirmations.get('cf-1')?.source, 'crm');
  assert.equal(model.confirmations.get('cf-1')?.destructive, true);
  model.reset(
    /** @type {any} */ (readyFrame({ pending_confirmations: [{ ...request, token: 'cf-2' }] })),
  );
  assert.equal(model.confirmations.get('cf-2')?.source, 'crm');
  assert.equal(model.confirmations.get('cf-2')?.destructive, true);
});

test("a conversation's stored history goes before what the tab saw, once, without running turns", () => {
  const { model, changes } = modelWithChanges();
  model.apply({
    type: 'message',
    conversation_id: C,
    message_id: 'u2',
    client_msg_id: 'x2',
    role: 'user',
    text: 'and now?',
  });
  /** @param {string} id @param {string} role @param {string} text @param {string} status */
  const stored = (id, role, text, status = 'completed') => ({
    conversation_id: C,
    message_id: id,
    role,
    text,
    status,
    created_at: '2026-01-01T00:00:00Z',
  });
  const history = [
    stored('u1', 'user', 'first question'),
    stored('t1', 'tool', '{"rows": []}'),
    stored('a1', 'assistant', 'first answer'),
    stored('u2', 'user', 'and now?'),
    stored('a2', 'assistant', 'still writi', 'streaming'),
  ];
  changes.length = 0;
  model.addHistory(C, history);
  const texts = () =>
    (model.conversation(C)?.items ?? []).map((item) => (item.kind === 'message' ? item.text : ''));
  assert.deepEqual(texts(), ['first question', 'first answer', 'and now?']);
  assert.equal(model.message('a1')?.status, 'complete');
  assert.deepEqual(changes, [{ reason: 'history', conversationId: C }]);
  model.addHistory(C, history);
  assert.deepEqual(texts(), ['first question', 'first answer', 'and now?']);
  assert.equal(changes.length, 1, 'nothing new: no change event');
});

test("a stored answer's tool lines come with the history, before it, once", () => {
  const model = new ConversationModel();
  const view = { kind: 'metrics', items: [{ label: 'Total', value: 3 }] };
  const history = [
    {
      conversation_id: C,
      message_id: 'u1',
      role: 'user',
      text: 'show AR aging',
      status: 'completed',
      created_at: '2026-01-01T00:00:00Z',
    },
    {
      conversation_id: C,
      message_id: 'a1',
      turn_id: 'tA',
      role: 'assistant',
      text: 'Here it is.',
      status: 'completed',
      created_at: '2026-01-01T00:00:01Z',
      tools: [{ call_id: 'k1', name: 'ar_aging', ok: true, summary: '9 open', view }],
    },
  ];
  model.addHistory(C, history);
  const kinds = () =>
    (model.conversation(C)?.items ?? []).map((item) => item.id);
  assert.deepEqual(kinds(), ['u1', 'k1', 'a1']);
  const tool = model.conversation(C)?.items[1];
  assert.equal(tool?.kind, 'tool');
  assert.deepEqual(tool?.kind === 'tool' && [tool.status, tool.summary, tool.view], [
    'ok',
    '9 open',
    view,
  ]);
  model.addHistory(C, history);
  assert.deepEqual(kinds(), ['u1', 'k1', 'a1']);
});

test('confirm_resolved with approved values updates the card of every tab', () => {
  const model = new ConversationModel();
  model.apply({
    type: 'confirm_request',
    conversation_id: C,
    turn_id: T,
    token: 'tok',
    action: 'create_sales_order',
    params: { quantity: 100 },
    summary: '100 × Widget',
    expires_at: '2030-01-01T00:00:00Z',
  });
  model.apply({ type: 'confirm_resolved', token: 'tok', status: 'approved' });
  assert.deepEqual(model.confirmations.get('tok')?.params, { quantity: 100 });
  model.apply({
    type: 'confirm_resolved',
    token: 'tok',
    status: 'approved',
    params: { quantity: 105 },
    summary: '105 × Widget',
  });
  const card = model.confirmations.get('tok');
  assert.deepEqual(card?.params, { quantity: 105 });
  assert.equal(card?.summary, '105 × Widget');
});

test('stored tool lines and views show in a fresh tab, once in a tab that saw them live', () => {
  const view = {
    kind: 'chart',
    chart: 'bar',
    title: 'Receivables aging',
    x: 'bucket',
    series: [{ key: 'amount', label: 'Open amount', type: 'money', currency: 'USD' }],
    rows: [{ bucket: 'Not yet due', amount: '1200.00' }],
  };
  const ready = readyFrame({
    conversations: [{ conversation_id: C, title: 'Aging', status: 'active', updated_at: 'y' }],
    messages: [
      {
        conversation_id: C,
        message_id: 'u1',
        role: 'user',
        text: 'show AR aging',
        status: 'completed',
        created_at: 'a',
        client_msg_id: 'k1',
      },
      {
        conversation_id: C,
        message_id: 'a1',
        role: 'assistant',
        text: 'Customers owe you $1,200.',
        status: 'completed',
        created_at: 'b',
        turn_id: T,
        tools: [
          {
            call_id: 'call-1',
            name: 'ar_aging',
            ok: true,
            summary: 'Receivables: $1,200 open',
            view,
            export: '/api/v1/exports/call-1.csv',
          },
          { call_id: 'call-2', name: 'stock_levels', ok: false, summary: 'stock is unavailable' },
        ],
      },
    ],
  });
  /** @param {ConversationModel} model */
  const shown = (model) =>
    model
      .conversation(C)
      ?.items.map((item) => (item.kind === 'tool' ? `tool:${item.id}:${item.status}` : item.kind));

  const fresh = modelWithChanges().model;
  fresh.reset(/** @type {any} */ (ready));
  assert.deepEqual(shown(fresh), ['message', 'tool:call-1:ok', 'tool:call-2:failed', 'message']);
  const [, aging, stock] = fresh.conversation(C)?.items ?? [];
  assert.deepEqual(aging, {
    kind: 'tool',
    id: 'call-1',
    conversationId: C,
    turnId: T,
    name: 'ar_aging',
    arguments: {},
    status: 'ok',
    summary: 'Receivables: $1,200 open',
    view,
    export: '/api/v1/exports/call-1.csv',
  });
  assert.equal(stock.kind === 'tool' && 'view' in stock, false, 'a line without a view has none');

  // A tab that saw the tool line live and then rebuilds shows it once, with the arguments it saw.
  const seen = modelWithChanges().model;
  seen.apply({ type: 'thinking', conversation_id: C, turn_id: T });
  seen.apply({
    type: 'tool_call',
    conversation_id: C,
    turn_id: T,
    call_id: 'call-1',
    name: 'ar_aging',
    arguments: { as_of: 'today' },
  });
  seen.apply({
    type: 'tool_result',
    conversation_id: C,
    turn_id: T,
    call_id: 'call-1',
    name: 'ar_aging',
    ok: true,
    summary: 'Receivables: $1,200 open',
    view,
  });
  seen.reset(/** @type {any} */ ({ ...ready, epoch: 'e2' }));
  assert.deepEqual(shown(seen), ['message', 'tool:call-1:ok', 'tool:call-2:failed', 'message']);
  const kept = seen.conversation(C)?.items[1];
  assert.deepEqual(kept?.kind === 'tool' && [kept.arguments, kept.export], [
    { as_of: 'today' },
    '/api/v1/exports/call-1.csv',
  ]);
});
