/**
 * The pure half of cited sources: which citations show, in which order, and which document
 * links become links. The DOM half (markers and chips) runs in the browser tests.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { citedNumbers, orderedCitations, webUrl } from '../widget/citations.js';

test('citations are listed by number, once each', () => {
  const cite = (n, title) => ({ n, document_id: `d${n}`, title, snippet: '' });
  assert.deepEqual(
    orderedCitations([cite(2, 'b'), cite(1, 'a'), cite(2, 'again')]).map((c) => c.title),
    ['a', 'b'],
  );
  assert.deepEqual(orderedCitations(undefined), []);
  assert.deepEqual([...citedNumbers([cite(3, 'c'), cite(1, 'a')])], [3, 1]);
});

test('only http(s) document URLs become links', () => {
  assert.equal(webUrl('https://erp.example/wiki/a b'), 'https://erp.example/wiki/a%20b');
  assert.equal(webUrl(' HTTP://erp.example/x '), 'http://erp.example/x');
  for (const bad of ['javascript:alert(1)', 'data:text/html,x', '/wiki/x', 'ftp://x', '', undefined]) {
    assert.equal(webUrl(bad), undefined, String(bad));
  }
});
