/**
 * The Markdown half of rendering answers (markdown-it's settings); the sanitiser half runs in
 * the browser tests, where DOMPurify has a DOM.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { markdownToHtml } from '../widget/markdown.js';

test('GFM tables, with their column alignment as a class', () => {
  const html = markdownToHtml('| Bucket | Amount |\n| --- | ---: |\n| current | $10,735.20 |');
  assert.match(html, /<table>/);
  assert.match(html, /<th>Bucket<\/th>/);
  assert.match(html, /<th class="align-right">Amount<\/th>/);
  assert.match(html, /<td class="align-right">\$10,735.20<\/td>/);
  assert.doesNotMatch(html, /style=/);
});

test('raw HTML in model text is escaped, never passed through', () => {
  const html = markdownToHtml('<img src=x onerror="alert(1)"> <script>x()</script> <b>hi</b>');
  assert.doesNotMatch(html, /<img|<script|<b>/);
  assert.match(html, /&lt;img src=x onerror=&quot;alert\(1\)&quot;&gt;/);
});

test('only http(s) and mailto links are made', () => {
  assert.match(
    markdownToHtml('[docs](https://example.com/a)'),
    /<a href="https:\/\/example.com\/a">docs<\/a>/,
  );
  assert.match(markdownToHtml('[mail](mailto:ap@example.com)'), /<a href="mailto:ap@example.com">/);
  for (const bad of [
    'javascript:alert(1)',
    'JaVaScRiPt:alert(1)',
    'data:text/html,x',
    'vbscript:x',
    '/relative',
    'file:///etc/passwd',
  ]) {
    assert.doesNotMatch(markdownToHtml(`[x](${bad})`), /<a /, bad);
  }
  // Bare URLs become links too (linkify), under the same rule.
  assert.match(markdownToHtml('see https://example.com'), /<a href="https:\/\/example.com">/);
});

test('images are not made: a remote image would be a request the model chose', () => {
  assert.doesNotMatch(markdownToHtml('![chart](https://example.com/x.png)'), /<img/);
});

test('emphasis, code, lists and single line breaks', () => {
  const html = markdownToHtml(
    'Cash is **$1.2M** on `1010`\nas of today\n\n- PO-1006\n- PO-1007\n\n```\nraw **text**\n```',
  );
  assert.match(html, /<strong>\$1.2M<\/strong>/);
  assert.match(html, /<code>1010<\/code><br>/);
  assert.match(html, /<ul>\n<li>PO-1006<\/li>/);
  assert.match(html, /<pre><code>raw \*\*text\*\*\n<\/code><\/pre>/);
});

const CITATIONS = [
  { n: 1, document_id: 'policy.md', title: 'Purchasing policy', snippet: 'Up to 5,000 EUR.' },
  { n: 2, document_id: 'limits.md', title: 'Approval limits', snippet: 'CFO above 50,000.' },
];

test('cited [n] markers are marked up; uncited ones stay text', () => {
  const html = markdownToHtml('Buyers approve up to 5,000 EUR [1][2], never more [3].', CITATIONS);
  assert.match(html, /EUR <sup class="cite" data-cite="1">\[1\]<\/sup><sup class="cite" data-cite="2">\[2\]<\/sup>,/);
  assert.match(html, /never more \[3\]\./);
  // Without citations nothing is a marker.
  assert.doesNotMatch(markdownToHtml('see [1]'), /<sup/);
  assert.doesNotMatch(markdownToHtml('see [1]', []), /<sup/);
});

test('markers in code spans, code blocks, escapes and links are left alone', () => {
  const html = markdownToHtml(
    'Use `items[1]` and \\[1] or [1](https://example.com/one).\n\n```\nrows[2] = 0\n```\n\n    [1] indented code',
    CITATIONS,
  );
  assert.doesNotMatch(html, /<sup/);
  assert.match(html, /<code>items\[1\]<\/code>/);
  assert.match(html, /<a href="https:\/\/example.com\/one">1<\/a>/);
  assert.match(html, /<pre><code>rows\[2\] = 0/);
});

test('markers inside emphasis, lists and tables are found', () => {
  const html = markdownToHtml('- **limit [1]**\n\n| a | b |\n| - | - |\n| x [2] | y |', CITATIONS);
  assert.match(html, /<strong>limit <sup class="cite" data-cite="1">/);
  assert.match(html, /<td>x <sup class="cite" data-cite="2">/);
});
