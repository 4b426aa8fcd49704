/**
 * Views of tool results and fields of confirmation cards: the golden fixtures that carry them
 * pass the widget's checks and reach the model; malformed ones are refused with a reason.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { ConversationModel } from '../model.js';
import { exportUrl } from '../widget/download.js';
import { columnsOf, fieldsProblem, truncationNote, viewProblem } from '../widget/view-data.js';
import { readyFrame } from './fake-websocket.js';

const SHARED = fileURLToPath(new URL('../../tests/fixtures/frames/', import.meta.url));
const LOCAL = fileURLToPath(new URL('./fixtures-views/', import.meta.url));

/** @param {string} dir */
function load(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((file) => file.endsWith('.json'))
    .map((file) => ({ file, ...JSON.parse(readFileSync(join(dir, file), 'utf8')) }));
}

const byName = new Map(load(LOCAL).map((f) => [f.file, f]));
for (const fixture of load(SHARED)) byName.set(fixture.file, fixture);
const withViews = [...byName.values()].filter((f) => f.frame?.view !== undefined);
const withFields = [...byName.values()].filter((f) => f.frame?.fields !== undefined);

test('there are fixtures of every view kind and of confirmation fields', () => {
  const kinds = new Set(withViews.map((f) => f.frame.view.kind));
  assert.deepEqual([...kinds].sort(), ['chart', 'metrics', 'table']);
  assert.ok(withFields.length > 0);
});

for (const fixture of withViews) {
  test(`fixture ${fixture.file}: the view is drawable and the model keeps it`, () => {
    const frame = JSON.parse(fixture.wire);
    assert.equal(viewProblem(frame.view), null);
    const model = new ConversationModel();
    model.apply(frame);
    const [tool] = model.conversation(frame.conversation_id)?.items ?? [];
    assert.equal(tool?.kind, 'tool');
    assert.deepEqual(tool.kind === 'tool' && tool.view, frame.view);
    assert.equal(tool.kind === 'tool' && tool.export, frame.export);
  });
}

for (const fixture of withFields) {
  test(`fixture ${fixture.file}: the fields label the card and the model keeps them`, () => {
    const frame = JSON.parse(fixture.wire);
    assert.equal(fieldsProblem(frame.fields), null);
    const model = new ConversationModel();
    model.apply(frame);
    assert.deepEqual(model.confirmations.get(frame.token)?.fields, frame.fields);
  });
}

test('malformed views are refused, each with the reason', () => {
  const table = {
    kind: 'table',
    columns: [{ key: 'a', label: 'A', type: 'text' }],
    rows: [{ a: 1 }],
  };
  const cases = [
    [null, 'the view is not an object'],
    [{ kind: 'map' }, 'kind "map" is not table, chart or metrics'],
    [{ ...table, columns: [] }, 'columns is empty'],
    [{ ...table, columns: [{ label: 'A' }] }, 'columns[0].key is missing'],
    [{ ...table, columns: [{ key: 'a', type: 'colour' }] }, 'columns[0].type "colour" is unknown'],
    [{ ...table, rows: 'x' }, 'rows is not a list'],
    [{ ...table, rows: [1] }, 'rows[0] is not an object'],
    [{ ...table, total_rows: -1 }, 'total_rows is not a count'],
    [{ ...table, title: 3 }, 'title is not a string'],
    [
      { kind: 'chart', chart: 'radar', x: 'a', series: [], rows: [] },
      'chart "radar" is not bar, line or pie',
    ],
    [{ kind: 'chart', chart: 'bar', series: [{ key: 'b' }], rows: [] }, 'x is missing'],
    [{ kind: 'chart', chart: 'pie', x: 'a', series: [], rows: [] }, 'series is empty'],
    [{ kind: 'metrics', items: [] }, 'items is empty'],
    [{ kind: 'metrics', items: [{ label: 'x' }] }, 'items[0].value is missing'],
    [{ kind: 'metrics', items: [{ value: 1 }] }, 'items[0].label is missing'],
  ];
  for (const [view, reason] of cases) assert.equal(viewProblem(view), reason);
  assert.equal(viewProblem(table), null);
});

test('malformed confirmation fields are refused', () => {
  assert.equal(fieldsProblem({}), 'fields is not a list');
  assert.equal(
    fieldsProblem([{ key: 'x', type: 'list', columns: 'a' }]),
    'fields[0].columns is not a list',
  );
  assert.equal(
    fieldsProblem([{ key: 'x', type: 'list', columns: [{ key: 'y', type: 'list' }] }]),
    'fields[0].columns[0].type "list" is unknown',
  );
  assert.equal(fieldsProblem([{ key: 'lines', label: 'Lines', type: 'list' }]), null);
});

test('"showing N of M" only when the view was cut', () => {
  const count = (/** @type {number} */ n) => n.toLocaleString('en-US');
  assert.equal(truncationNote({ rows: [1, 2], total_rows: 1240 }, count), 'Showing 2 of 1,240');
  assert.equal(truncationNote({ rows: [1, 2], total_rows: 2 }, count), null);
  assert.equal(truncationNote({ rows: [1, 2] }, count), null);
});

test('columns of records that came without any', () => {
  assert.deepEqual(
    columnsOf([
      { item: 'Widget', quantity: 100 },
      { item: 'Bolt', note: 'x' },
    ]),
    [
      { key: 'item', label: '', type: 'text' },
      { key: 'quantity', label: '', type: 'number' },
      { key: 'note', label: '', type: 'text' },
    ],
  );
});

test('views survive a resume and a snapshot rebuild that still holds their turn', () => {
  const [table] = withViews.filter((f) => f.frame.view.kind === 'table');
  const frame = JSON.parse(table.wire);
  const C = frame.conversation_id;
  const T = frame.turn_id;
  const model = new ConversationModel();
  model.apply({
    type: 'tool_call',
    conversation_id: C,
    turn_id: T,
    call_id: frame.call_id,
    name: frame.name,
    arguments: {},
  });
  model.apply(frame);
  model.apply({
    type: 'response',
    conversation_id: C,
    turn_id: T,
    message_id: 'a1',
    text: 'Here they are.',
    usage: {
      prompt_tokens: 1,
      completion_tokens: 1,
      total_tokens: 2,
      cost: 0,
      model: 'dev',
      estimated: true,
    },
  });
  // A replayed frame (resume) changes nothing.
  model.apply(frame);
  assert.equal(model.conversation(C)?.items.length, 2);

  // The server could not resume: the snapshot has the messages of the turn, not its tool lines.
  const ready = {
    ...readyFrame({ resumed: false }),
    conversations: [
      { conversation_id: C, title: 't', status: 'active', updated_at: '2026-01-01T00:00:00Z' },
    ],
    messages: [
      {
        conversation_id: C,
        message_id: 'u1',
        role: 'user',
        text: 'show POs',
        status: 'completed',
        created_at: '2026-01-01T00:00:00Z',
        client_msg_id: 'x1',
      },
      {
        conversation_id: C,
        message_id: 'a1',
        role: 'assistant',
        text: 'Here they are.',
        status: 'completed',
        created_at: '2026-01-01T00:00:01Z',
        turn_id: T,
      },
    ],
  };
  model.reset(ready);
  const items = model.conversation(C)?.items ?? [];
  assert.deepEqual(
    items.map((item) => `${item.kind}:${item.id}`),
    ['message:u1', `tool:${frame.call_id}`, 'message:a1'],
  );
  const tool = items[1];
  assert.deepEqual(tool.kind === 'tool' && tool.view, frame.view);

  // A tool line still running when the log was lost, of a turn that ended meanwhile, ends too.
  model.apply({
    type: 'tool_call',
    conversation_id: C,
    turn_id: T,
    call_id: 'call_late',
    name: 'late',
    arguments: {},
  });
  model.reset(ready);
  const late = model.conversation(C)?.items.find((item) => item.id === 'call_late');
  assert.equal(late?.kind === 'tool' && late.status, 'failed');

  // A snapshot without that turn drops its tool line with it.
  model.reset({ ...ready, conversations: [], messages: [] });
  assert.equal(model.conversation(C), undefined);
});

test('an export path resolves on the Parley server only', () => {
  const server = new URL('https://parley.example.com/');
  assert.equal(
    exportUrl('/api/v1/exports/call_1.csv', server)?.href,
    'https://parley.example.com/api/v1/exports/call_1.csv',
  );
  // Behind a path prefix, like the socket and the status route.
  assert.equal(
    exportUrl('/api/v1/exports/call_1.csv', new URL('https://erp.example.com/parley/'))?.href,
    'https://erp.example.com/parley/api/v1/exports/call_1.csv',
  );
  for (const path of [
    'https://evil.example/x.csv',
    '//evil.example/x.csv',
    '/\\evil.example/x.csv',
    'api/v1/exports/x.csv',
    'javascript:alert(1)',
  ]) {
    assert.equal(exportUrl(path, server), null, path);
  }
});
