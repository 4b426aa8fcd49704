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
