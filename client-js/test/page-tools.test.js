/**
 * Page tools in the client: the set is offered after every handshake, a `page_tool_call` runs
 * its handler and the value (or what went wrong) goes back as `page_tool_result`.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { ParleyClient } from '../client.js';
import { fakeWebSocketClass, readyFrame, waitFor } from './fake-websocket.js';

const OPEN_RECORD = {
  description: 'Select and scroll to a purchase order',
  parameters: { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] },
};

/** @param {Record<string, unknown>} [options] */
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
  /** @param {number} n */
  const handshake = async (n) => {
    await waitFor(() => WebSocket.instances.length > n);
    const ws = WebSocket.instances[n];
    ws.open();
    ws.receive(readyFrame());
    return ws;
  };
  return { client, handshake };
}

/**
 * The answer to a call, once the client sent it.
 *
 * @param {any} ws
 * @param {string} callId
 */
async function answerTo(ws, callId) {
  /** @returns {any} */
  const find = () => ws.framesOfType('page_tool_result').find((f) => f.call_id === callId);
  await waitFor(() => find() !== undefined);
  return find();
}

test('tools registered before connecting are offered right after ready, and again after a reconnect', async (t) => {
  const { client, handshake } = setup();
  t.after(() => client.close());
  client.registerTool('open_record', OPEN_RECORD, () => 'ok');
  client.registerTool('set_filter', { description: 'Set the filter', confirm: true }, () => 'ok');
  client.connect();
  client.sendMessage('open PO-1003');

  const first = await handshake(0);
  const kinds = first.frames().map((/** @type {any} */ f) => f.type);
  assert.deepEqual(kinds, ['hello', 'page_tools', 'user_message']);
  assert.deepEqual(first.framesOfType('page_tools')[0].tools, [
    { name: 'open_record', ...OPEN_RECORD },
    {
      name: 'set_filter',
      description: 'Set the filter',
      parameters: { type: 'object', properties: {} },
      confirm: true,
    },
  ]);

  first.serverClose(1012, 'restart');
  const second = await handshake(1);
  assert.equal(second.framesOfType('page_tools').length, 1, 'a new connection starts with none');
});

test('registering and withdrawing while connected sends the new set', async (t) => {
  const { client, handshake } = setup();
  t.after(() => client.close());
  client.connect();
  const ws = await handshake(0);
  assert.deepEqual(ws.framesOfType('page_tools'), [], 'nothing to offer yet');

  const withdraw = client.registerTool('open_record', OPEN_RECORD, () => 'ok');
  withdraw();
  withdraw(); // a second call changes nothing

  const sets = ws.framesOfType('page_tools').map((/** @type {any} */ f) => f.tools.length);
  assert.deepEqual(sets, [1, 0]);
});

test('a call runs its handler and answers with the value, also a promised one', async (t) => {
  const { client, handshake } = setup();
  t.after(() => client.close());
  /** @type {unknown[]} */
  const seen = [];
  client.registerTool('open_record', OPEN_RECORD, (args) => {
    seen.push(args);
    return { opened: args.id };
  });
  client.registerTool('count_rows', {}, async () => 7);
  client.registerTool('nothing', {}, () => undefined);
  client.connect();
  const ws = await handshake(0);

  ws.receive({ type: 'page_tool_call', call_id: 'pt_1', name: 'open_record', arguments: { id: 'PO-1003' } });
  ws.receive({ type: 'page_tool_call', call_id: 'pt_2', name: 'count_rows', arguments: {} });
  ws.receive({ type: 'page_tool_call', call_id: 'pt_3', name: 'nothing', arguments: {} });

  assert.deepEqual(await answerTo(ws, 'pt_1'), {
    type: 'page_tool_result',
    call_id: 'pt_1',
    result: { opened: 'PO-1003' },
  });
  assert.equal((await answerTo(ws, 'pt_2')).result, 7);
  assert.equal((await answerTo(ws, 'pt_3')).result, null);
  assert.deepEqual(seen, [{ id: 'PO-1003' }]);
});

test('a throw, a rejection, an unknown tool, a value that is not JSON and a hang become errors', async (t) => {
  const { client, handshake } = setup({ pageToolTimeoutMs: 50 });
  t.after(() => client.close());
  client.registerTool('throws', {}, () => {
    throw new Error('no row PO-9 on this page');
  });
  client.registerTool('rejects', {}, () => Promise.reject(new Error('table not loaded')));
  client.registerTool('cyclic', {}, () => {
    /** @type {any} */
    const value = {};
    value.self = value;
    return value;
  });
  client.registerTool('hangs', {}, () => new Promise(() => {}));
  client.connect();
  const ws = await handshake(0);

  for (const name of ['throws', 'rejects', 'missing', 'cyclic', 'hangs']) {
    ws.receive({ type: 'page_tool_call', call_id: `pt_${name}`, name, arguments: {} });
  }

  assert.equal((await answerTo(ws, 'pt_throws')).error, 'no row PO-9 on this page');
  assert.equal((await answerTo(ws, 'pt_rejects')).error, 'table not loaded');
  assert.equal((await answerTo(ws, 'pt_missing')).error, 'this page has no tool named missing');
  assert.match((await answerTo(ws, 'pt_cyclic')).error, /circular/i);
  assert.equal((await answerTo(ws, 'pt_hangs')).error, 'page tool hangs did not finish within 50 ms');
  for (const answer of ws.framesOfType('page_tool_result')) assert.equal('result' in answer, false);
});

test('a call is not answered on a later connection', async (t) => {
  const { client, handshake } = setup();
  t.after(() => client.close());
  /** @type {(value: unknown) => void} */
  let finish = () => {};
  client.registerTool('slow', {}, () => new Promise((resolve) => (finish = resolve)));
  client.connect();
  const first = await handshake(0);
  first.receive({ type: 'page_tool_call', call_id: 'pt_1', name: 'slow', arguments: {} });
  await waitFor(() => finish !== undefined);
  first.serverClose(1012, 'restart');
  const second = await handshake(1);

  finish('too late');
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.deepEqual(second.framesOfType('page_tool_result'), []);
});
