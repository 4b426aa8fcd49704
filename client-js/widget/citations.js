/**
 * Cited sources of an answer: the `[n]` markers in its text become superscript links to the
 * source chips listed under it (`response.citations`).
 *
 * The markers are found by a markdown-it inline rule, so they are recognised exactly where
 * Markdown has ordinary text: never inside code spans or code blocks, and an escaped `\[1]`
 * stays text. A marker whose number has no citation is left as the plain text it is. The rule
 * only marks the spot (`<sup class="cite" data-cite="n">[n]</sup>`, which the sanitiser lets
 * through); the clickable marker and the chips are then built with DOM calls, their texts set
 * as text, so nothing the model or a document wrote is ever parsed as HTML.
 *
 * @module citations
 */

import { h } from './dom.js';
import { english } from './catalog.js';
import { sourceWording } from './wording.js';

/** @typedef {import('./catalog.js').Translate} Translate */

/** @typedef {import('../types.js').Citation} Citation */
/** @typedef {import('markdown-it').MarkdownIt} MarkdownIt */
/** @typedef {import('markdown-it').StateInline} StateInline */
/** @typedef {import('markdown-it').Token} Token */

/** `[1]` … `[9999]`: the markers the server numbers its sources with. */
const MARKER = /^\[(\d{1,4})\]/;

/** The only document links that become links: web pages. */
const WEB_URL = /^https?:\/\//i;

/**
 * The env key markdown-it carries the cited numbers in, for one render.
 *
 * @typedef {{parleyCited?: ReadonlySet<number>}} CitationEnv
 */

/**
 * The markdown-it plugin: an inline rule after `link`, so `[1](https://…)` stays a link and
 * only a bare `[n]` whose n is cited becomes a marker.
 *
 * @param {MarkdownIt} md
 */
export function citationMarkers(md) {
  md.inline.ruler.after('link', 'parley_citation', (/** @type {StateInline} */ state, silent) => {
    const cited = /** @type {CitationEnv} */ (state.env)?.parleyCited;
    if (!cited || cited.size === 0 || state.src.charCodeAt(state.pos) !== 0x5b /* [ */) {
      return false;
    }
    const match = MARKER.exec(state.src.slice(state.pos, state.pos + 6));
    if (!match || !cited.has(Number(match[1]))) return false;
    if (!silent) {
      const token = state.push('parley_citation', 'sup', 0);
      token.meta = { n: Number(match[1]) };
    }
    state.pos += match[0].length;
    return true;
  });
  /** @type {(tokens: Token[], index: number) => string} */
  const render = (tokens, index) => {
    const n = Number(tokens[index].meta?.n);
    return `<sup class="cite" data-cite="${n}">[${n}]</sup>`;
  };
  md.renderer.rules.parley_citation = render;
}

/**
 * The numbers an answer's citations cover, for {@link citationMarkers}.
 *
 * @param {Citation[] | undefined} citations
 * @returns {Set<number>}
 */
export function citedNumbers(citations) {
  return new Set((citations ?? []).map((citation) => citation.n));
}

/**
 * The citations in marker order, one per number (the first wins if the server sent two).
 *
 * @param {Citation[] | undefined} citations
 * @returns {Citation[]}
 */
export function orderedCitations(citations) {
  /** @type {Map<number, Citation>} */
  const byNumber = new Map();
  for (const citation of citations ?? []) {
    if (!byNumber.has(citation.n)) byNumber.set(citation.n, citation);
  }
  return [...byNumber.values()].sort((a, b) => a.n - b.n);
}

/**
 * A citation's URL when it is a web page (http or https), else undefined: a document link is
 * written by whoever filed the document, so `javascript:` and the like are never made links.
 *
 * @param {string | undefined} url
 * @returns {string | undefined}
 */
export function webUrl(url) {
  if (typeof url !== 'string' || !WEB_URL.test(url.trim())) return undefined;
  try {
    return new URL(url.trim()).href;
  } catch {
    return undefined;
  }
}

/**
 * Turn the marker spots of a sanitised answer into buttons that lead to their chip.
 *
 * @param {ParentNode} root
 * @param {Citation[] | undefined} citations
 * @param {Translate} [t]
 */
export function linkMarkers(root, citations, t = english) {
  const byNumber = new Map(orderedCitations(citations).map((c) => [c.n, c]));
  for (const spot of root.querySelectorAll('sup.cite[data-cite]')) {
    const n = Number(spot.getAttribute('data-cite'));
    const citation = byNumber.get(n);
    // A marker inside a link cannot hold a button; it reads as the plain text it came as.
    if (!citation || spot.closest('a')) {
      spot.replaceWith(`[${n}]`);
      continue;
    }
    const words = sourceWording(citation, t);
    spot.replaceChildren(
      h(
        'button',
        {
          type: 'button',
          class: 'cite-ref',
          'data-action': 'cite',
          'data-n': String(n),
          'data-testid': 'cite-ref',
          'aria-label': words.marker,
          title: citation.title,
        },
        [String(n)],
      ),
    );
  }
}

/**
 * The chips under an answer: number, title (a link to the document when it has a web URL,
 * opened in a new tab) and a button that shows the cited passage; the passage is also the
 * chip's tooltip.
 *
 * @param {Citation[] | undefined} citations
 * @param {Translate} [t]
 * @returns {HTMLElement}
 */
export function sourceList(citations, t = english) {
  const chips = orderedCitations(citations).map((citation) => {
    const words = sourceWording(citation, t);
    const url = webUrl(citation.url);
    const title = url
      ? h(
          'a',
          {
            class: 'source-title',
            href: url,
            target: '_blank',
            rel: 'noopener noreferrer',
            'data-testid': 'source-link',
          },
          [citation.title],
        )
      : h('span', { class: 'source-title' }, [citation.title]);
    const snippet = h('p', { class: 'snippet', 'data-testid': 'source-snippet' }, [
      citation.snippet,
    ]);
    snippet.hidden = true;
    const toggle = h(
      'button',
      {
        type: 'button',
        class: 'source-toggle',
        'data-action': 'source-toggle',
        'aria-expanded': 'false',
        'aria-label': words.show,
        'data-testid': 'source-toggle',
      },
      ['…'],
    );
    return h(
      'li',
      {
        class: 'source',
        'data-testid': 'source-chip',
        'data-n': String(citation.n),
        title: citation.snippet,
      },
      [
        h('span', { class: 'source-n', 'aria-hidden': 'true' }, [String(citation.n)]),
        title,
        toggle,
        snippet,
      ],
    );
  });
  const list = h(
    'ol',
    { class: 'sources', 'data-testid': 'sources', 'aria-label': t('sources.label') },
    chips,
  );
  list.hidden = chips.length === 0;
  return list;
}

/**
 * Show or hide a chip's passage.
 *
 * @param {Element} chip
 * @param {boolean} [open] default: the other way round
 */
function togglePassage(chip, open) {
  const toggle = chip.querySelector('.source-toggle');
  const snippet = /** @type {HTMLElement | null} */ (chip.querySelector('.snippet'));
  if (!toggle || !snippet) return;
  const show = open ?? snippet.hidden;
  snippet.hidden = !show;
  toggle.setAttribute('aria-expanded', String(show));
}

/**
 * Clicks inside an answer: a marker opens its chip's passage and moves the focus there; a
 * chip's button shows or hides its passage.
 *
 * @param {HTMLElement} message the message node holding the bubble and the source list
 * @param {Event} event
 */
export function onSourceClick(message, event) {
  const button = /** @type {HTMLElement | null} */ (event.target)?.closest?.('button');
  if (!button) return;
  if (button.dataset.action === 'cite') {
    const chip = message.querySelector(`.source[data-n="${Number(button.dataset.n)}"]`);
    if (!chip) return;
    togglePassage(chip, true);
    chip.scrollIntoView?.({ block: 'nearest' });
    /** @type {HTMLElement | null} */ (chip.querySelector('.source-toggle'))?.focus();
  } else if (button.dataset.action === 'source-toggle') {
    const chip = button.closest('.source');
    if (chip) togglePassage(chip);
  }
}
