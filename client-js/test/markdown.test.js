import assert from 'node:assert/strict';
import { test } from 'node:test';

import { parseInline, parseMarkdown } from '../markdown.js';

test('bold and code runs; unclosed markers stay literal', () => {
  assert.deepEqual(parseInline('Cash is **$1.2M** on `1010` now'), [
    { type: 'text', text: 'Cash is ' },
    { type: 'strong', text: '$1.2M' },
    { type: 'text', text: ' on ' },
    { type: 'code', text: '1010' },
    { type: 'text', text: ' now' },
  ]);
  // Mid-stream the closing marker has not arrived yet.
  assert.deepEqual(parseInline('You have **$306'), [{ type: 'text', text: 'You have **$306' }]);
  assert.deepEqual(parseInline('`**not bold**`'), [{ type: 'code', text: '**not bold**' }]);
});

test('markup in model text stays text', () => {
  const text = '<img src=x onerror=alert(1)> **<b>hi</b>** [link](javascript:alert(1))';
  const blocks = parseMarkdown(text);
  const runs = blocks.flatMap((b) => (b.type === 'paragraph' ? b.lines.flat() : []));
  assert.deepEqual(
    runs.map((r) => r.type),
    ['text', 'strong', 'text'],
  );
  assert.equal(
    runs.map((r) => r.text).join(''),
    '<img src=x onerror=alert(1)> <b>hi</b> [link](javascript:alert(1))',
  );
});

test('paragraphs, line breaks and lists', () => {
  const blocks = parseMarkdown(
    'Overdue orders:\nas of today\n\n- PO-1006 **late**\n- PO-1007\n\n1. first\n2) second\nafter',
  );
  assert.deepEqual(blocks, [
    {
      type: 'paragraph',
      lines: [[{ type: 'text', text: 'Overdue orders:' }], [{ type: 'text', text: 'as of today' }]],
    },
    {
      type: 'list',
      ordered: false,
      items: [
        [
          { type: 'text', text: 'PO-1006 ' },
          { type: 'strong', text: 'late' },
        ],
        [{ type: 'text', text: 'PO-1007' }],
      ],
    },
    {
      type: 'list',
      ordered: true,
      items: [[{ type: 'text', text: 'first' }], [{ type: 'text', text: 'second' }]],
    },
    { type: 'paragraph', lines: [[{ type: 'text', text: 'after' }]] },
  ]);
});

test('fenced code keeps its text verbatim, also while the fence is still open', () => {
  assert.deepEqual(parseMarkdown('```\na **b**\n- c\n```\nend'), [
    { type: 'code', text: 'a **b**\n- c' },
    { type: 'paragraph', lines: [[{ type: 'text', text: 'end' }]] },
  ]);
  assert.deepEqual(parseMarkdown('```json\n{"a": 1'), [{ type: 'code', text: '{"a": 1' }]);
});

test('empty and whitespace-only text has no blocks; CRLF is a line break', () => {
  assert.deepEqual(parseMarkdown(''), []);
  assert.deepEqual(parseMarkdown(' \n\n '), []);
  assert.equal(parseMarkdown('a\r\nb')[0].type, 'paragraph');
});
