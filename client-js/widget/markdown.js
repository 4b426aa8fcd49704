/**
 * Assistant answers as Markdown: markdown-it (CommonMark with GFM tables and strikethrough)
 * turns the text into HTML, and DOMPurify cleans that HTML before it becomes DOM nodes.
 *
 * Model text is untrusted, so there are two independent walls:
 * - markdown-it runs with `html: false`: raw HTML in the text is escaped, shown as the
 *   characters it is. Links are only made for http(s) and mailto URLs (`validateLink`), and
 *   images are switched off (a remote image would be a request the model chose).
 * - DOMPurify keeps only the tags and attributes Markdown produces, only http(s) and mailto
 *   hrefs, and every link gets `target="_blank" rel="noopener noreferrer"`.
 *
 * Cited answers: `[n]` markers whose n is among the answer's citations become markers that lead
 * to its source chips (citations.js), found by a markdown-it rule, never inside code.
 *
 * While an answer streams it is re-rendered as it grows; {@link updateMarkdown} keeps the
 * blocks that did not change, so finished paragraphs, tables and selections stay put and only
 * the growing block is replaced.
 *
 * @module markdown
 */

import DOMPurify from 'dompurify';
import MarkdownIt from 'markdown-it';

import { citationMarkers, citedNumbers, linkMarkers } from './citations.js';

/** @typedef {import('../types.js').Citation} Citation */

/** The only link targets that survive: web pages and e-mail addresses. */
const SAFE_URL = /^(?:https?:\/\/|mailto:)/i;

/** Everything Markdown (with GFM tables) can produce, and nothing else. */
// prettier-ignore
const ALLOWED_TAGS = [
  'p', 'br', 'strong', 'em', 's', 'del', 'code', 'pre', 'blockquote', 'hr',
  'ul', 'ol', 'li', 'a', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6',
  'table', 'thead', 'tbody', 'tr', 'th', 'td', 'sup',
];
const ALLOWED_ATTR = ['href', 'title', 'start', 'class', 'data-cite'];
const ALIGNMENTS = new Set(['left', 'center', 'right']);

const markdown = new MarkdownIt({ html: false, linkify: true, breaks: true, typographer: false });
markdown.disable(['image']);
markdown.validateLink = (url) => SAFE_URL.test(url.trim());
markdown.use(citationMarkers);
// GFM column alignment arrives as an inline style; a class says the same without letting any
// style attribute through the sanitiser.
markdown.core.ruler.push('parley_align', (state) => {
  for (const token of state.tokens) {
    if (token.type !== 'inline' && token.attrs) {
      const style = token.attrGet('style');
      const align = style ? /text-align:\s*(\w+)/.exec(String(style))?.[1] : undefined;
      if (style !== null) token.attrs = token.attrs.filter(([name]) => name !== 'style');
      if (align && ALIGNMENTS.has(align)) token.attrSet('class', `align-${align}`);
    }
  }
});

/**
 * Markdown → HTML, before sanitising. Pure: works in node as in the browser.
 *
 * @param {string} text
 * @param {Citation[]} [citations] the answer's sources: their `[n]` markers are marked up
 * @returns {string}
 */
export function markdownToHtml(text, citations) {
  return markdown.render(text, { parleyCited: citedNumbers(citations) });
}

/** @type {import('dompurify').DOMPurify | null} */
let purifier = null;

/**
 * One DOMPurify of our own (its hooks are not shared with a host page that uses DOMPurify too).
 *
 * @param {Window & typeof globalThis} window
 * @returns {import('dompurify').DOMPurify}
 */
function sanitizer(window) {
  if (purifier) return purifier;
  const instance = DOMPurify(window);
  instance.addHook('afterSanitizeAttributes', (node) => {
    if (node.nodeName !== 'A') return;
    const href = node.getAttribute('href') ?? '';
    if (!SAFE_URL.test(href.trim())) node.removeAttribute('href');
    node.setAttribute('target', '_blank');
    node.setAttribute('rel', 'noopener noreferrer');
  });
  purifier = instance;
  return instance;
}

/**
 * Markdown as a fragment of sanitised DOM nodes.
 *
 * @param {Document} doc
 * @param {string} text
 * @param {Citation[]} [citations]
 * @param {import('./catalog.js').Translate} [t] the language of the source markers' labels
 * @returns {DocumentFragment}
 */
export function renderMarkdown(doc, text, citations, t) {
  const view = /** @type {Window & typeof globalThis} */ (doc.defaultView);
  const clean = sanitizer(view).sanitize(markdownToHtml(text, citations), {
    ALLOWED_TAGS,
    ALLOWED_ATTR,
    ALLOWED_URI_REGEXP: SAFE_URL,
    RETURN_DOM_FRAGMENT: true,
  });
  const fragment = doc.importNode(clean, true);
  // markdown-it puts a newline between blocks; as DOM it is only noise in the text of the answer.
  for (const node of [...fragment.childNodes]) {
    if (node.nodeType === Node.TEXT_NODE && !node.textContent?.trim()) node.remove();
  }
  linkMarkers(fragment, citations, t);
  return fragment;
}

/**
 * Show `text` in `container`, replacing only the top-level blocks that changed since the last
 * call (while an answer streams, that is the last block or two).
 *
 * @param {HTMLElement} container
 * @param {string} text
 * @param {Citation[]} [citations]
 * @param {import('./catalog.js').Translate} [t] the language of the source markers' labels
 */
export function updateMarkdown(container, text, citations, t) {
  const fresh = [...renderMarkdown(container.ownerDocument, text, citations, t).childNodes];
  const current = [...container.childNodes];
  fresh.forEach((node, index) => {
    const old = current[index];
    if (old === undefined) container.append(node);
    else if (!old.isEqualNode(node)) old.replaceWith(node);
  });
  for (const extra of current.slice(fresh.length)) extra.remove();
}
