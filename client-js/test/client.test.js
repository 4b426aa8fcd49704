import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { isTemporaryClose, ParleyClient, TEMPORARY_CLOSE_CODES, toWebSocketUrl } from '../client.js';
import { fakeWebSocketClass, readyFrame, waitFor } from './fake-websocket.js';

/**
 * A client on a fake socket with immediate reconnects and no keepalive timers.
 *
 * @param {Record<string, unknown>} [options]
 */
function setup(options = {}) {
  const WebSocket = fakeWebSocketClass();
  const client = new ParleyClient({
    url: 'ws://parley.test/ws',
    token: 't0',
    WebSocket,
    backoff: { baseMs: 0, capMs: 0 },
    pingIntervalMs: 0,
    ...options,
  });
  /** @type {{type: string, detail: any}[]} */
  const events = [];
  for (const type of ['state', 'close', 'error', 'frame']) {
    client.addEventListener(type, (event) =>
      events.push({ type, detail: /** @type {CustomEvent} */ (event).detail }),
    );
  }
  /** The nth socket the client opened (0-based), once it exists. */
  const socket = async (n) => {
    await waitFor(() => WebSocket.instances.length > n);
    return WebSocket.instances[n];
  };
  /** Open socket n and finish the handshake with `ready`. */
  const handshake = async (n, ready = {}) => {
    const ws = await socket(n);
    ws.open();
    ws.receive(readyFrame(ready));
    return ws;
  };
  return { client, WebSocket, events, socket, handshake };
}

test('hello goes first with protocol 1, the token and the client name', async (t) => {
  const { client, socket, events } = setup({ clientName: 'erp-web/4.2' });
  t.after(() => client.close());
  client.connect();
  assert.equal(client.state, 'connecting');
  const ws = await socket(0);
  assert.equal(ws.url, 'ws://parley.test/ws');
  ws.open();
  assert.deepEqual(ws.frames(), [
    { type: 'hello', protocol: 1, token: 't0', client: 'erp-web/4.2' },
  ]);
  assert.equal(client.state, 'connecting', 'connected only once ready arrives');
  ws.receive(readyFrame());
  assert.equal(client.state, 'connected');
  const states = events.filter((e) => e.type === 'state').map((e) => e.detail);
  assert.deepEqual(states, [
    { old: 'disconnected', new: 'connecting' },
    { old: 'connecting', new: 'connected' },
  ]);
});

test('getToken supplies the token', async (t) => {
  const { client, socket } = setup({ token: undefined, getToken: async () => 'fetched' });
  t.after(() => client.close());
  client.connect();
  const ws = await socket(0);
  ws.open();
  assert.equal(ws.frames()[0].token, 'fetched');
});

test('frames with a seq already seen are dropped', async (t) => {
  const { client, handshake, events } = setup();
  t.after(() => client.close());
  client.connect();
  const ws = await handshake(0, { last_seq: 4 });
  const typing = (seq) => ({ type: 'typing', conversation_id: 'c1', active: true, seq });
  ws.receive(typing(5));
  ws.receive(typing(5));
  ws.receive(typing(3));
  ws.receive(typing(6));
  ws.receive(typing(4));
  const seen = events
    .filter((e) => e.type === 'frame' && e.detail.type === 'typing')
    .map((e) => e.detail.seq);
  assert.deepEqual(seen, [5, 6]);
  assert.equal(client.lastSeq, 6);
  // Frames outside the log (no seq) are never deduplicated.
  ws.receive({ type: 'pong', t: 1 });
  ws.receive({ type: 'pong', t: 1 });
  assert.equal(events.filter((e) => e.type === 'frame' && e.detail.type === 'pong').length, 2);
});

test('a reconnect resumes from the epoch and last seq held', async (t) => {
  const { client, handshake, socket, events } = setup();
  t.after(() => client.close());
  client.connect();
  const first = await handshake(0, { epoch: 'ep-A', last_seq: 10 });
  first.receive({ type: 'thinking', conversation_id: 'c1', turn_id: 't1', seq: 11 });
  first.receive({
    type: 'response_delta',
    conversation_id: 'c1',
    turn_id: 't1',
    message_id: 'm1',
    delta: 'Hel',
    seq: 12,
  });
  first.serverClose(1012, 'restart');
  assert.equal(client.state, 'disconnected');
  const close = events.find((e) => e.type === 'close');
  assert.deepEqual(close?.detail, {
    code: 1012,
    reason: 'restart',
    willReconnect: true,
    delayMs: 0,
  });

  const second = await socket(1);
  second.open();
  assert.deepEqual(second.frames()[0], {
    type: 'hello',
    protocol: 1,
    token: 't0',
    epoch: 'ep-A',
    last_seq: 12,
  });
  // A resumed ready reports the log head; the replay that follows must not be dropped.
  second.receive(readyFrame({ epoch: 'ep-A', last_seq: 14, resumed: true, active_turns: [] }));
  second.receive({
    type: 'response_delta',
    conversation_id: 'c1',
    turn_id: 't1',
    message_id: 'm1',
    delta: 'lo',
    seq: 12,
  });
  second.receive({
    type: 'response_delta',
    conversation_id: 'c1',
    turn_id: 't1',
    message_id: 'm1',
    delta: 'lo',
    seq: 13,
  });
  second.receive({
    type: 'response_delta',
    conversation_id: 'c1',
    turn_id: 't1',
    message_id: 'm1',
    delta: '!',
    seq: 14,
  });
  assert.equal(client.model.message('m1')?.text, 'Hello!');
  assert.equal(client.lastSeq, 14);
  assert.ok(client.model.turns.has('t1'), 'the turn survives a resumed reconnect');
});

test('ready with resumed false resets seq bookkeeping and rebuilds the model', async (t) => {
  const { client, handshake, socket } = setup();
  t.after(() => client.close());
  client.connect();
  const first = await handshake(0, { epoch: 'old', last_seq: 0 });
  first.receive({
    type: 'message',
    conversation_id: 'c1',
    message_id: 'm1',
    client_msg_id: 'x',
    role: 'user',
    text: 'hi',
    seq: 1,
  });
  first.receive({
    type: 'response_delta',
    conversation_id: 'c1',
    turn_id: 't1',
    message_id: 'm2',
    delta: 'par',
    seq: 2,
  });
  first.serverClose(1006);

  const second = await socket(1);
  second.open();
  assert.equal(second.frames()[0].epoch, 'old');
  assert.equal(second.frames()[0].last_seq, 2);
  // The log was lost: a new epoch, numbering starts again, the snapshot is the truth.
  second.receive(
    readyFrame({
      epoch: 'new',
      last_seq: 1,
      resumed: false,
      conversations: [
        {
          conversation_id: 'c9',
          title: 'Cash',
          status: 'active',
          updated_at: '2026-11-22T16:00:00Z',
        },
      ],
      messages: [
        {
          conversation_id: 'c9',
          message_id: 'm9',
          role: 'user',
          text: 'cash?',
          status: 'complete',
          created_at: '2026-11-22T16:00:00Z',
          client_msg_id: 'q',
        },
      ],
      active_turns: [
        {
          conversation_id: 'c9',
          turn_id: 't9',
          message_id: 'm10',
          text: 'You have',
          status: 'looking up cash',
        },
      ],
    }),
  );
  assert.equal(client.epoch, 'new');
  assert.equal(client.lastSeq, 1);
  assert.deepEqual([...client.model.conversations.keys()], ['c9']);
  assert.equal(client.model.message('m1'), undefined, 'the old transcript is gone');
  assert.equal(client.model.message('m10')?.text, 'You have');
  assert.equal(client.model.activeTurn('c9')?.status, 'looking up cash');
  // seq 2 under the new epoch is new, even though 2 was seen under the old one.
  second.receive({
    type: 'response_delta',
    conversation_id: 'c9',
    turn_id: 't9',
    message_id: 'm10',
    delta: ' $1.2M',
    seq: 2,
  });
  assert.equal(client.model.message('m10')?.text, 'You have $1.2M');
});

test('unacknowledged messages are resent with the same client_msg_id after a reconnect', async (t) => {
  const { client, handshake, socket } = setup();
  t.after(() => client.close());
  client.connect();
  const first = await handshake(0);
  const acked = client.sendMessage('first', { conversationId: 'c1' });
  const lost = client.sendMessage('second', { conversationId: 'c1', context: { page: 'po-list' } });
  assert.ok(acked && lost);
  assert.deepEqual(first.framesOfType('user_message'), [
    { type: 'user_message', client_msg_id: acked, text: 'first', conversation_id: 'c1' },
    {
      type: 'user_message',
      client_msg_id: lost,
      text: 'second',
      conversation_id: 'c1',
      context: { page: 'po-list' },
    },
  ]);
  assert.deepEqual(client.unacknowledged, [acked, lost]);
  assert.equal(client.model.pending.size, 2);
  first.receive({
    type: 'message',
    conversation_id: 'c1',
    message_id: 'm1',
    client_msg_id: acked,
    role: 'user',
    text: 'first',
    seq: 1,
  });
  assert.deepEqual(client.unacknowledged, [lost]);
  first.serverClose(1001);

  const second = await handshake(1, { resumed: true, last_seq: 1 });
  assert.deepEqual(second.framesOfType('user_message'), [
    {
      type: 'user_message',
      client_msg_id: lost,
      text: 'second',
      conversation_id: 'c1',
      context: { page: 'po-list' },
    },
  ]);
  second.receive({
    type: 'message',
    conversation_id: 'c1',
    message_id: 'm2',
    client_msg_id: lost,
    role: 'user',
    text: 'second',
    seq: 2,
  });
  assert.deepEqual(client.unacknowledged, []);
  assert.equal(client.model.pending.size, 0);
  const texts = client.model
    .conversation('c1')
    ?.items.map((item) => item.kind === 'message' && item.text);
  assert.deepEqual(texts, ['first', 'second']);
});

test('a message refused by the server is not resent and shows as failed', async (t) => {
  const { client, handshake, events } = setup();
  t.after(() => client.close());
  client.connect();
  const ws = await handshake(0);
  const id = client.sendMessage('x'.repeat(10));
  assert.ok(id);
  ws.receive({
    type: 'error',
    code: 'message_too_long',
    message: 'text too long',
    retryable: false,
    ref: id,
  });
  assert.deepEqual(client.unacknowledged, []);
  assert.equal(client.model.pending.get(id)?.status, 'failed');
  assert.equal(
    events.filter((e) => e.type === 'error').length,
    1,
    'one error event per error frame',
  );
  assert.ok(client.retryMessage(id));
  assert.equal(ws.framesOfType('user_message').at(-1).client_msg_id, id);
  assert.equal(client.model.pending.get(id)?.status, 'pending');
});

test('frames sent while disconnected wait in a bounded queue; overflow keeps the oldest', async (t) => {
  const { client, handshake, events } = setup({ maxQueued: 3 });
  t.after(() => client.close());
  assert.ok(client.confirm('tok-1', 'approve'));
  const messageId = client.sendMessage('queued message');
  assert.ok(messageId);
  assert.ok(client.feedback('m1', 'up', 'great'));
  assert.equal(client.typing('c1', true), false, 'typing is not worth queueing');
  assert.equal(client.cancel('c1', 't1'), false, 'the fourth frame does not fit');
  assert.equal(client.sendMessage('one too many'), null);
  const overflow = events.filter((e) => e.type === 'error').map((e) => e.detail);
  assert.equal(overflow.length, 2);
  assert.equal(overflow[0].code, 'queue_full');
  assert.equal(overflow[0].local, true);
  assert.equal(client.queued, 3);

  client.connect();
  const ws = await handshake(0);
  assert.deepEqual(
    ws.frames().map((f) => f.type),
    ['hello', 'confirm', 'user_message', 'feedback'],
    'queued frames go out in the order they were asked for',
  );
  assert.deepEqual(ws.frames()[1], { type: 'confirm', token: 'tok-1', decision: 'approve' });
  assert.deepEqual(ws.frames()[3], {
    type: 'feedback',
    message_id: 'm1',
    rating: 'up',
    comment: 'great',
  });
  assert.equal(client.queued, 0);
  assert.ok(client.cancel('c1'));
  assert.deepEqual(ws.frames().at(-1), { type: 'cancel', conversation_id: 'c1' });
});

test('messages sent before a drop go out before frames queued after it', async (t) => {
  const { client, handshake } = setup();
  t.after(() => client.close());
  client.connect();
  const first = await handshake(0);
  const before = client.sendMessage('before the drop', { conversationId: 'c1' });
  first.serverClose(1006);
  client.cancel('c1');
  const after = client.sendMessage('after the drop', { conversationId: 'c1' });
  const second = await handshake(1, { resumed: true });
  assert.deepEqual(
    second.frames().map((f) => (f.type === 'user_message' ? f.client_msg_id : f.type)),
    ['hello', before, 'cancel', after],
  );
});

test('nothing but hello is sent before ready', async (t) => {
  const { client, socket } = setup();
  t.after(() => client.close());
  client.connect();
  const ws = await socket(0);
  ws.open();
  client.confirm('tok', 'reject');
  assert.deepEqual(
    ws.frames().map((f) => f.type),
    ['hello'],
  );
  ws.receive(readyFrame());
  assert.deepEqual(
    ws.frames().map((f) => f.type),
    ['hello', 'confirm'],
  );
});

// The list the server's protocol tests check too: one rule on both sides.
const CLOSE_CODES = JSON.parse(
  readFileSync(new URL('../../tests/fixtures/close-codes.json', import.meta.url), 'utf8'),
);

for (const code of CLOSE_CODES.temporary) {
  test(`close code ${code} is temporary: the client reconnects`, async (t) => {
    const { client, handshake, socket, events } = setup();
    t.after(() => client.close());
    client.connect();
    (await handshake(0)).serverClose(code);
    assert.equal(isTemporaryClose(code), true);
    assert.ok(TEMPORARY_CLOSE_CODES.has(code));
    assert.equal(events.find((e) => e.type === 'close')?.detail.willReconnect, true);
    await socket(1);
  });
}

for (const code of [...CLOSE_CODES.terminal, ...CLOSE_CODES.undefined_codes_are_terminal]) {
  test(`close code ${code} is terminal: the client stops`, async (t) => {
    const { client, WebSocket, handshake, events } = setup();
    t.after(() => client.close());
    client.connect();
    (await handshake(0)).serverClose(code, 'no');
    assert.equal(isTemporaryClose(code), false);
    assert.equal(client.state, 'disconnected');
    assert.deepEqual(events.find((e) => e.type === 'close')?.detail, {
      code,
      reason: 'no',
      willReconnect: false,
    });
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(WebSocket.instances.length, 1, 'no reconnect');
  });
}

test('4401 with getToken fetches a fresh token once and retries', async (t) => {
  let calls = 0;
  const { client, WebSocket, socket, events } = setup({
    token: undefined,
    getToken: async () => `tok-${++calls}`,
  });
  t.after(() => client.close());
  client.connect();
  const first = await socket(0);
  first.open();
  assert.equal(first.frames()[0].token, 'tok-1');
  first.serverClose(4401, 'token expired');
  const second = await socket(1);
  second.open();
  assert.equal(second.frames()[0].token, 'tok-2');
  // Still refused with the fresh token: give up rather than loop.
  second.serverClose(4401, 'unknown user');
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(WebSocket.instances.length, 2);
  assert.equal(events.filter((e) => e.type === 'close').at(-1)?.detail.willReconnect, false);
  assert.equal(calls, 2);
});

test('after a successful handshake a later 4401 may refresh the token again', async (t) => {
  let calls = 0;
  const { client, handshake, socket } = setup({
    token: undefined,
    getToken: async () => `tok-${++calls}`,
  });
  t.after(() => client.close());
  client.connect();
  (await handshake(0)).serverClose(4401);
  (await handshake(1)).serverClose(4401);
  const third = await socket(2);
  third.open();
  assert.equal(third.frames()[0].token, 'tok-3');
});

test('token_expired makes the client authenticate again on the same socket', async (t) => {
  let calls = 0;
  const { client, handshake, WebSocket } = setup({
    token: undefined,
    getToken: async () => `tok-${++calls}`,
  });
  t.after(() => client.close());
  client.connect();
  const ws = await handshake(0, { epoch: 'e', last_seq: 3 });
  ws.receive({ type: 'error', code: 'token_expired', message: 'token expired', retryable: false });
  await waitFor(() => ws.framesOfType('hello').length === 2);
  assert.deepEqual(ws.framesOfType('hello')[1], {
    type: 'hello',
    protocol: 1,
    token: 'tok-2',
    epoch: 'e',
    last_seq: 3,
  });
  assert.equal(WebSocket.instances.length, 1);
  await client.reauthenticate('manual');
  assert.equal(ws.framesOfType('hello')[2].token, 'manual');
});

test('close() stops reconnecting; connect() starts again', async (t) => {
  const { client, WebSocket, handshake } = setup();
  t.after(() => client.close());
  client.connect();
  const ws = await handshake(0);
  client.close();
  assert.deepEqual(ws.closedByClient, { code: 1000, reason: '' });
  assert.equal(client.state, 'disconnected');
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(WebSocket.instances.length, 1);
  client.connect();
  await handshake(1);
  assert.equal(client.state, 'connected');
});

test('reconnect delays follow the backoff and reset after a handshake', async (t) => {
  const { client, handshake, socket, events } = setup({
    backoff: { baseMs: 8, capMs: 1000 },
    random: () => 0.9999,
  });
  t.after(() => client.close());
  client.connect();
  (await socket(0)).serverClose(1006);
  (await socket(1)).serverClose(1006);
  (await socket(2)).serverClose(1006);
  const ws = await handshake(3);
  ws.serverClose(1006);
  await socket(4);
  const delays = events.filter((e) => e.type === 'close').map((e) => e.detail.delayMs);
  assert.deepEqual(delays, [8, 16, 32, 8]);
});

test('a ping without a pong drops the connection and reconnects', async (t) => {
  const { client, handshake, socket } = setup({ pingIntervalMs: 5, pongTimeoutMs: 20 });
  t.after(() => client.close());
  client.connect();
  const ws = await handshake(0);
  await waitFor(() => ws.framesOfType('ping').length > 0);
  ws.receive({ type: 'pong', t: ws.framesOfType('ping')[0].t });
  assert.ok(client.lastPongAt !== undefined && client.rttMs !== undefined && client.rttMs >= 0);
  // Now the server goes silent.
  await waitFor(() => ws.closedByClient !== undefined);
  assert.equal(ws.closedByClient?.reason, 'keepalive timeout');
  await socket(1);
});

test('bad text from the server is reported, not thrown', async (t) => {
  const { client, handshake, events } = setup();
  t.after(() => client.close());
  client.connect();
  const ws = await handshake(0);
  ws.receive('not json');
  ws.receive('[1,2]');
  ws.receive('{"no":"type"}');
  const codes = events.filter((e) => e.type === 'error').map((e) => e.detail.code);
  assert.deepEqual(codes, ['invalid_json', 'invalid_frame', 'invalid_frame']);
  assert.equal(client.state, 'connected');
});

test('a frame of a known type but the wrong shape is reported, not thrown', async (t) => {
  const { client, handshake, events } = setup();
  t.after(() => client.close());
  client.connect();
  const ws = await handshake(0);
  assert.doesNotThrow(() => ws.receive({ type: 'response_delta', seq: 1 }));
  assert.doesNotThrow(() =>
    ws.receive({ type: 'ready', epoch: 'e2', last_seq: 0, resumed: false }),
  );
  assert.equal(client.state, 'connected');
  ws.receive({ type: 'typing', conversation_id: 'c', active: true, seq: 2 });
  assert.equal(client.model.conversation('c')?.otherTabTyping, true);
});

test('a socket the client already replaced cannot disturb it', async (t) => {
  const { client, handshake, events } = setup();
  t.after(() => client.close());
  client.connect();
  const first = await handshake(0);
  first.serverClose(1006);
  await handshake(1);
  first.receive({ type: 'typing', conversation_id: 'c', active: true, seq: 99 });
  first.serverClose(1006);
  assert.equal(client.state, 'connected');
  assert.equal(events.filter((e) => e.type === 'close').length, 1);
});

test('URLs become WebSocket URLs', () => {
  assert.equal(toWebSocketUrl('/ws', 'https://erp.example.com/app/po'), 'wss://erp.example.com/ws');
  assert.equal(toWebSocketUrl('http://localhost:8000/ws'), 'ws://localhost:8000/ws');
  assert.equal(toWebSocketUrl(undefined, 'http://localhost:8000/'), 'ws://localhost:8000/ws');
  assert.equal(toWebSocketUrl('wss://p.example/ws'), 'wss://p.example/ws');
});

test('client message ids are UUIDs and unique', async (t) => {
  const { client } = setup();
  const ids = new Set();
  for (let i = 0; i < 50; i += 1) ids.add(client.sendMessage(`m${i}`, {}));
  assert.equal(ids.size, 50);
  for (const id of ids)
    assert.match(
      String(id),
      /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    );
  t.after(() => client.close());
});

test('only the first message of a new conversation carries the profile', async (t) => {
  const { client, handshake } = setup();
  t.after(() => client.close());
  client.connect();
  const ws = await handshake(0, {
    profiles: [
      { id: 'finance', title: 'Finance copilot', default: true },
      { id: 'sales', title: 'Sales copilot' },
    ],
  });
  const first = client.sendMessage('open deals?', { profile: 'sales' });
  client.sendMessage('and next month?', { conversationId: 'c1', profile: 'sales' });
  const [start, next] = ws.framesOfType('user_message');
  assert.deepEqual(start, {
    type: 'user_message',
    client_msg_id: first,
    text: 'open deals?',
    profile: 'sales',
  });
  assert.equal(next.conversation_id, 'c1');
  assert.equal('profile' in next, false, 'a message to a conversation never names a profile');
  assert.equal(client.model.pending.get(String(first))?.profile, 'sales');
  // The server binds the new conversation; the model knows its profile from the message.
  ws.receive({
    type: 'message',
    seq: 1,
    conversation_id: 'c9',
    message_id: 'm1',
    client_msg_id: first,
    role: 'user',
    text: 'open deals?',
  });
  assert.equal(client.model.conversation('c9')?.profile, 'sales');
});

test('a message refused for its profile is retried with the profile chosen now', async (t) => {
  const { client, handshake } = setup();
  t.after(() => client.close());
  client.connect();
  const ws = await handshake(0);
  const id = String(client.sendMessage('reboot the router', { profile: 'ops' }));
  ws.receive({
    type: 'error',
    code: 'forbidden',
    message: "profile 'ops' is not allowed for this user",
    retryable: false,
    ref: id,
  });
  assert.equal(client.model.pending.get(id)?.status, 'failed');
  assert.ok(client.retryMessage(id, { profile: 'support' }));
  assert.equal(ws.framesOfType('user_message').at(-1).profile, 'support');
  assert.equal(client.model.pending.get(id)?.profile, 'support');
  ws.receive({ type: 'error', code: 'forbidden', message: 'no', retryable: false, ref: id });
  // null: no profile at all, the server's default.
  assert.ok(client.retryMessage(id, { profile: null }));
  const last = ws.framesOfType('user_message').at(-1);
  assert.equal(last.client_msg_id, id);
  assert.equal('profile' in last, false);
  // Without options the retry asks for what the message asked for before.
  ws.receive({ type: 'error', code: 'rate_limited', message: 'x', retryable: true, ref: id });
  assert.ok(client.retryMessage(id));
  assert.equal('profile' in ws.framesOfType('user_message').at(-1), false);
});
