/**
 * The golden frame fixtures shared with the server's pytest suite (tests/fixtures/frames/*.json):
 * the client must understand every frame the server may send, and what the client sends must be
 * the exact text the protocol's encoder produces for the same frame.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { ParleyClient } from '../client.js';
import { fakeWebSocketClass, readyFrame, waitFor } from './fake-websocket.js';

// PARLEY_FRAME_FIXTURES points elsewhere, e.g. at a work-in-progress set of fixtures.
const FIXTURES =
  process.env.PARLEY_FRAME_FIXTURES ??
  fileURLToPath(new URL('../../tests/fixtures/frames/', import.meta.url));

/** Every frame type the server sends in protocol v1. */
const SERVER_TYPES = [
  'ready',
  'message',
  'thinking',
  'tool_call',
  'tool_result',
  'response_delta',
  'response',
  'confirm_request',
  'confirm_resolved',
  'action_executed',
  'turn_end',
  'typing',
  'conversation_updated',
  'page_tool_call',
  'error',
  'pong',
];

/**
 * @param {string} dir
 * @returns {{file: string, name: string, note?: string, direction: string, frame?: any, wire: string, error?: any}[]}
 */
function load(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((file) => file.endsWith('.json'))
    .sort()
    .map((file) => ({ file, ...JSON.parse(readFileSync(join(dir, file), 'utf8')) }));
}

// The widget's copies of the view fixtures, used until (and unless) the shared set has a file
// of the same name, which then wins.
const LOCAL_FIXTURES = fileURLToPath(new URL('./fixtures-views/', import.meta.url));
const shared = load(FIXTURES);
const sharedNames = new Set(shared.map((f) => f.file));
const fixtures = [...shared, ...load(LOCAL_FIXTURES).filter((f) => !sharedNames.has(f.file))];
const invalid = load(join(FIXTURES, 'invalid'));
const server = fixtures.filter((f) => f.direction === 'server');
const client = fixtures.filter((f) => f.direction === 'client');

/** A client whose socket is open but has not seen `ready` (so no seq is filtered yet). */
async function openClient(options = {}) {
  const WebSocket = fakeWebSocketClass();
  const parley = new ParleyClient({
    url: 'ws://x/ws',
    token: 'tok',
    WebSocket,
    pingIntervalMs: 0,
    backoff: { baseMs: 0, capMs: 0 },
    ...options,
  });
  /** @type {{type: string, detail: any}[]} */
  const events = [];
  const record = (/** @type {Event} */ event) =>
    events.push({ type: event.type, detail: /** @type {CustomEvent} */ (event).detail });
  for (const type of ['frame', 'error', ...SERVER_TYPES]) parley.addEventListener(type, record);
  parley.connect();
  await waitFor(() => WebSocket.instances.length > 0);
  const socket = WebSocket.instances[0];
  socket.open();
  return { parley, socket, events, WebSocket };
}

test(
  'fixtures are present',
  { skip: fixtures.length === 0 && 'no fixtures in tests/fixtures/frames yet' },
  () => {
    const types = new Set(server.map((f) => f.frame?.type));
    const missing = SERVER_TYPES.filter((type) => !types.has(type));
    assert.deepEqual(missing, [], `server frame types without a fixture: ${missing.join(', ')}`);
  },
);

for (const fixture of server) {
  test(`server fixture ${fixture.file}: parsed and dispatched`, async (t) => {
    const { parley, socket, events } = await openClient();
    t.after(() => parley.close());
    // The wire text is exactly the frame, `seq` spliced in or not.
    assert.deepEqual(
      JSON.parse(fixture.wire),
      fixture.frame,
      'wire and frame of the fixture agree',
    );
    socket.receive(fixture.wire);
    const frames = events.filter((e) => e.type === 'frame');
    assert.equal(frames.length, 1, 'one frame event');
    assert.deepEqual(frames[0].detail, fixture.frame);
    assert.ok(
      events.some((e) => e.type === fixture.frame.type && e.detail === frames[0].detail),
      `a '${fixture.frame.type}' event`,
    );
    const localErrors = events.filter((e) => e.type === 'error' && e.detail.local);
    assert.deepEqual(localErrors, [], 'the client raised no error of its own');
    if (fixture.frame.type === 'ready') {
      assert.equal(parley.state, 'connected');
      assert.equal(parley.epoch, fixture.frame.epoch);
    }
  });
}

for (const fixture of server) {
  test(`server fixture ${fixture.file}: applied after a handshake without throwing`, async (t) => {
    const { parley, socket } = await openClient();
    t.after(() => parley.close());
    socket.receive(readyFrame({ epoch: 'fixture-epoch', last_seq: 0 }));
    socket.receive(fixture.wire);
    if (typeof fixture.frame.seq === 'number' && fixture.frame.seq > 0) {
      assert.equal(parley.lastSeq, fixture.frame.seq);
    }
  });
}

for (const fixture of invalid.filter((f) => f.direction === 'server')) {
  test(`invalid server fixture ${fixture.file}: survives it`, async (t) => {
    const { parley, socket } = await openClient();
    t.after(() => parley.close());
    socket.receive(readyFrame());
    assert.doesNotThrow(() => socket.receive(fixture.wire));
    assert.equal(parley.state, 'connected');
  });
}

/**
 * Produce the fixture's frame through the public client API and return the text sent.
 * Random or clock-based values (client_msg_id, ping `t`) are taken over from the fixture.
 *
 * @param {any} frame
 * @returns {Promise<string | undefined>} undefined for frames the API cannot produce
 */
async function sendThroughApi(frame) {
  if (frame.type === 'hello') {
    const { parley, socket, WebSocket } = await openClient({
      token: frame.token,
      clientName: frame.client,
    });
    try {
      if (frame.epoch === undefined) return socket.sent[0];
      socket.receive(readyFrame({ epoch: frame.epoch, last_seq: frame.last_seq }));
      socket.serverClose(1012);
      await waitFor(() => WebSocket.instances.length > 1);
      WebSocket.instances[1].open();
      return WebSocket.instances[1].sent[0];
    } finally {
      parley.close();
    }
  }
  if (frame.type === 'page_tools' || frame.type === 'page_tool_result') return sendPageTools(frame);
  const { parley, socket } = await openClient();
  try {
    socket.receive(readyFrame());
    const before = socket.sent.length;
    switch (frame.type) {
      case 'user_message':
        parley.sendMessage(frame.text, {
          conversationId: frame.conversation_id,
          context: frame.context,
          profile: frame.profile,
        });
        break;
      case 'confirm':
        parley.confirm(frame.token, frame.decision, frame.params);
        break;
      case 'cancel':
        parley.cancel(frame.conversation_id, frame.turn_id);
        break;
      case 'typing':
        parley.typing(frame.conversation_id, frame.active);
        break;
      case 'feedback':
        parley.feedback(frame.message_id, frame.rating, frame.comment);
        break;
      case 'ping':
        parley.ping();
        break;
      default:
        return undefined;
    }
    assert.equal(socket.sent.length, before + 1);
    const sent = JSON.parse(socket.sent[before]);
    if (frame.type === 'user_message') sent.client_msg_id = frame.client_msg_id;
    if (frame.type === 'ping') {
      if (frame.t === undefined) delete sent.t;
      else sent.t = frame.t;
    }
    return JSON.stringify(sent);
  } finally {
    parley.close();
  }
}

/**
 * What the client sends for a page tool fixture: the set it offers after `ready`, or the answer
 * of a handler returning the fixture's result (or throwing its error).
 *
 * @param {any} frame
 * @returns {Promise<string>}
 */
async function sendPageTools(frame) {
  const { parley, socket } = await openClient();
  try {
    if (frame.type === 'page_tools') {
      for (const { name, ...options } of frame.tools) parley.registerTool(name, options, () => null);
      socket.receive(readyFrame());
      // An empty set is what withdrawing the last tool sends.
      if (frame.tools.length === 0) parley.registerTool('gone', {}, () => null)();
      return socket.sent[socket.sent.length - 1];
    }
    parley.registerTool('run', {}, () => {
      if (frame.error !== undefined) throw new Error(frame.error);
      return frame.result;
    });
    socket.receive(readyFrame());
    socket.receive({ type: 'page_tool_call', call_id: frame.call_id, name: 'run', arguments: {} });
    await waitFor(() => JSON.parse(socket.sent[socket.sent.length - 1]).type === 'page_tool_result');
    return socket.sent[socket.sent.length - 1];
  } finally {
    parley.close();
  }
}

for (const fixture of client) {
  const producible = fixture.frame?.type !== 'typing' || fixture.frame.seq === undefined;
  test(
    `client fixture ${fixture.file}: the client sends the same text`,
    { skip: !producible && 'a typing frame with seq is the server mirror' },
    async () => {
      const text = await sendThroughApi(fixture.frame);
      if (text === undefined) return;
      // Floats such as ping `t` may be spelled differently by the two encoders; compare values then.
      if (fixture.frame.type === 'ping')
        assert.deepEqual(JSON.parse(text), JSON.parse(fixture.wire));
      else assert.equal(text, fixture.wire);
    },
  );
}
