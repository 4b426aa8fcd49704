/**
 * A deliberately tiny Markdown subset for assistant answers: paragraphs, line breaks, `**bold**`,
 * `` `code` ``, fenced code blocks and bulleted or numbered lists.
 *
 * Model text is untrusted. Parsing yields plain data (no HTML strings), and rendering builds DOM
 * nodes whose text goes through `textContent`, so nothing the model writes can become markup,
 * a link or a script. Anything outside the subset is shown as the characters it is.
 *
 * @module markdown
 */

/**
 * @typedef {{type: 'text' | 'strong' | 'code', text: string}} Inline
 * @typedef {{type: 'paragraph', lines: Inline[][]}
 *   | {type: 'list', ordered: boolean, items: Inline[][]}
 *   | {type: 'code', text: string}} Block
 */

const BULLET = /^\s{0,3}[-*•]\s+(.*)$/;
const NUMBERED = /^\s{0,3}\d{1,3}[.)]\s+(.*)$/;
const FENCE = /^\s{0,3}```/;

/**
 * Split text into blocks.
 *
 * @param {string} text
 * @returns {Block[]}
 */
export function parseMarkdown(text) {
  /** @type {Block[]} */
  const blocks = [];
  const lines = text.replace(/\r\n?/g, '\n').split('\n');
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (FENCE.test(line)) {
      // A fence still open while the answer streams shows its content as code so far.
      const body = [];
      i += 1;
      while (i < lines.length && !FENCE.test(lines[i])) body.push(lines[i++]);
      i += 1;
      blocks.push({ type: 'code', text: body.join('\n') });
      continue;
    }
    if (line.trim() === '') {
      i += 1;
      continue;
    }
    const bullet = BULLET.exec(line);
    const numbered = bullet ? null : NUMBERED.exec(line);
    if (bullet || numbered) {
      const ordered = Boolean(numbered);
      const pattern = ordered ? NUMBERED : BULLET;
      /** @type {Inline[][]} */
      const items = [];
      while (i < lines.length) {
        const match = pattern.exec(lines[i]);
        if (!match) break;
        items.push(parseInline(match[1]));
        i += 1;
      }
      blocks.push({ type: 'list', ordered, items });
      continue;
    }
    /** @type {Inline[][]} */
    const paragraph = [];
    while (
      i < lines.length &&
      lines[i].trim() !== '' &&
      !FENCE.test(lines[i]) &&
      !BULLET.test(lines[i]) &&
      !NUMBERED.test(lines[i])
    ) {
      paragraph.push(parseInline(lines[i]));
      i += 1;
    }
    blocks.push({ type: 'paragraph', lines: paragraph });
  }
  return blocks;
}

/**
 * Split one line into text, bold and code runs. Unclosed markers stay literal text.
 *
 * @param {string} line
 * @returns {Inline[]}
 */
export function parseInline(line) {
  /** @type {Inline[]} */
  const runs = [];
  const pattern = /`([^`]+)`|\*\*(.+?)\*\*/g;
  let last = 0;
  for (const match of line.matchAll(pattern)) {
    const start = match.index ?? 0;
    if (start > last) runs.push({ type: 'text', text: line.slice(last, start) });
    if (match[1] !== undefined) runs.push({ type: 'code', text: match[1] });
    else runs.push({ type: 'strong', text: match[2] });
    last = start + match[0].length;
  }
  if (last < line.length) runs.push({ type: 'text', text: line.slice(last) });
  return runs;
}

/**
 * Build DOM nodes for `text` into a fragment.
 *
 * @param {Document} doc
 * @param {string} text
 * @returns {DocumentFragment}
 */
export function renderMarkdown(doc, text) {
  const fragment = doc.createDocumentFragment();
  for (const block of parseMarkdown(text)) {
    if (block.type === 'code') {
      const pre = doc.createElement('pre');
      const code = doc.createElement('code');
      code.textContent = block.text;
      pre.append(code);
      fragment.append(pre);
    } else if (block.type === 'list') {
      const list = doc.createElement(block.ordered ? 'ol' : 'ul');
      for (const item of block.items) {
        const li = doc.createElement('li');
        appendInline(doc, li, item);
        list.append(li);
      }
      fragment.append(list);
    } else {
      const p = doc.createElement('p');
      block.lines.forEach((line, index) => {
        if (index > 0) p.append(doc.createElement('br'));
        appendInline(doc, p, line);
      });
      fragment.append(p);
    }
  }
  return fragment;
}

/**
 * @param {Document} doc
 * @param {HTMLElement} parent
 * @param {Inline[]} runs
 */
function appendInline(doc, parent, runs) {
  for (const run of runs) {
    if (run.type === 'text') {
      parent.append(doc.createTextNode(run.text));
    } else {
      const element = doc.createElement(run.type === 'strong' ? 'strong' : 'code');
      element.textContent = run.text;
      parent.append(element);
    }
  }
}
