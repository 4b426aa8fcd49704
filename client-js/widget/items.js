/**
 * The DOM of the transcript's items: a message (Markdown for the assistant, text for the user)
 * with its cited sources and its status line, a tool line with the view of its result, a
 * confirmation card, a note about the conversation (a hand-off). The
 * widget creates a node per model item once and updates it as the item changes; what a node
 * last showed is remembered here, so an update that changes nothing touches nothing.
 *
 * @module items
 */

import { onSourceClick, sourceList } from './citations.js';
import { h, icon } from './dom.js';
import { updateMarkdown } from './markdown.js';
import { editableParams, paramForm, readForm } from './card-edit.js';
import { paramList } from './params.js';
import { checkedFields, checkedView } from './view-data.js';
import { drawView } from './views.js';
import {
  actionTitle,
  confirmationResult,
  confirmSourceLine,
  errorSentence,
  formatCountdown,
  messageErrorSentence,
  resultFields,
  toolLine,
} from './wording.js';

/** @typedef {import('../types.js').ConversationItem} ConversationItem */
/** @typedef {import('./catalog.js').Translate} Translate */
/** @typedef {import('../types.js').MessageItem} MessageItem */
/** @typedef {import('../types.js').ToolItem} ToolItem */
/** @typedef {import('../types.js').ConfirmationItem} ConfirmationItem */

/**
 * @typedef {object} ItemState what the widget knows beyond the model
 * @property {Map<string, 'approve' | 'reject'>} deciding decisions sent, not yet resolved, by token
 * @property {Map<string, 'up' | 'down'>} ratings feedback given, by message id
 * @property {() => string | undefined} locale the locale of views and cards
 * @property {(id: string | undefined) => string | undefined} profileTitle a profile's title by id
 * @property {() => Translate} words the widget's language
 * @property {Set<string>} editing tokens of the cards whose params are being edited
 * @property {Map<string, string>} cardErrors the server's or the widget's objection to a card's
 *   edited params, by token
 */

/** Creates and updates the nodes of transcript items. */
export class ItemRenderer {
  /** @type {WeakMap<HTMLElement, string>} the text each message node shows */
  #renderedText = new WeakMap();
  /** @type {WeakMap<HTMLElement, unknown>} the citations each message node shows */
  #renderedCitations = new WeakMap();
  /** @type {WeakMap<HTMLElement, {view: unknown, dispose: () => void}>} each tool node's view */
  #drawnViews = new WeakMap();
  #deciding;
  #ratings;
  #locale;
  #profileTitle;
  #words;
  #editing;
  #cardErrors;
  /** @type {WeakMap<HTMLElement, unknown>} the params each card shows */
  #renderedParams = new WeakMap();
  /** @type {WeakMap<HTMLElement, import('./card-edit.js').EditableParam[]>} each card's inputs */
  #editable = new WeakMap();

  /** @param {ItemState} state */
  constructor({ deciding, ratings, locale, profileTitle, words, editing, cardErrors }) {
    this.#words = words;
    this.#editing = editing;
    this.#cardErrors = cardErrors;
    this.#deciding = deciding;
    this.#ratings = ratings;
    this.#locale = locale;
    this.#profileTitle = profileTitle;
  }

  /**
   * Free what a node removed from the transcript holds (a chart).
   *
   * @param {HTMLElement} node
   */
  dispose(node) {
    this.#drawnViews.get(node)?.dispose();
    this.#drawnViews.delete(node);
  }

  /**
   * Draw (once) the view of a tool result under its line.
   *
   * @param {HTMLElement} node
   * @param {ToolItem} item
   */
  #updateView(node, item) {
    const drawn = this.#drawnViews.get(node);
    if (drawn?.view === item.view) return;
    drawn?.dispose();
    node.querySelector(':scope > .view')?.remove();
    this.#drawnViews.delete(node);
    const view = checkedView(item.view);
    if (!view) {
      // Remembered too, so a malformed view is reported once, not on every render.
      this.#drawnViews.set(node, { view: item.view, dispose: () => {} });
      return;
    }
    const { node: figure, dispose } = drawView(view, {
      locale: this.#locale(),
      exportPath: item.export,
      t: this.#words(),
    });
    node.append(figure);
    this.#drawnViews.set(node, { view: item.view, dispose });
  }

  /**
   * @param {ConversationItem} item
   * @returns {HTMLElement}
   */
  create(item) {
    if (item.kind === 'tool') {
      return h('div', { class: 'tool-item', 'data-call-id': item.id }, [
        h('div', { class: 'tool', 'data-testid': 'tool-line' }),
      ]);
    }
    if (item.kind === 'confirmation') return this.#createConfirmation(item);
    if (item.kind === 'note') {
      return h('div', { class: 'note', role: 'note', 'data-testid': 'note' }, [
        h('span', { class: 'note-text' }),
      ]);
    }
    const role = item.role === 'user' ? 'user' : 'assistant';
    const node = h('div', { class: `msg ${role}`, 'data-testid': `message-${role}` }, [
      h('div', { class: 'bubble' }),
      sourceList(undefined, this.#words()),
      h('div', { class: 'meta' }),
    ]);
    if (role === 'assistant') {
      node.addEventListener('click', (event) => onSourceClick(node, event));
    }
    return node;
  }

  /**
   * @param {HTMLElement} node
   * @param {ConversationItem} item
   */
  update(node, item) {
    if (item.kind === 'tool') {
      const line = /** @type {HTMLElement} */ (node.firstElementChild);
      line.dataset.status = item.status;
      line.textContent = toolLine(item, this.#words());
      this.#updateView(node, item);
      return;
    }
    if (item.kind === 'confirmation') {
      this.#updateConfirmation(node, item);
      return;
    }
    if (item.kind === 'note') {
      const text = /** @type {HTMLElement} */ (node.firstElementChild);
      if (text.textContent !== item.text) text.textContent = item.text;
      return;
    }
    node.dataset.status = item.status;
    node.dataset.messageId = item.id;
    // A turn that only asked for an approval ends without a word: nothing to show or rate.
    node.hidden = item.role !== 'user' && item.status === 'complete' && !item.text.trim();
    const bubble = /** @type {HTMLElement} */ (node.firstElementChild);
    const citations = item.role === 'user' ? undefined : item.citations;
    if (
      this.#renderedText.get(node) !== item.text ||
      this.#renderedCitations.get(node) !== citations
    ) {
      this.#renderedText.set(node, item.text);
      if (item.role === 'user') bubble.textContent = item.text;
      else updateMarkdown(bubble, item.text, citations, this.#words());
    }
    if (this.#renderedCitations.get(node) !== citations) {
      this.#renderedCitations.set(node, citations);
      /** @type {HTMLElement} */ (bubble.nextElementSibling).replaceWith(
        sourceList(citations, this.#words()),
      );
    }
    this.#updateMeta(/** @type {HTMLElement} */ (node.lastElementChild), item);
  }

  /**
   * The line under a message: sending state, failure with retry, or feedback buttons.
   *
   * @param {HTMLElement} meta
   * @param {MessageItem} item
   */
  #updateMeta(meta, item) {
    const signature = [
      item.status,
      this.#ratings.get(item.id) ?? '',
      item.error?.code ?? '',
      item.profile ?? '',
    ].join('|');
    if (meta.dataset.signature === signature) return;
    meta.dataset.signature = signature;
    meta.className = 'meta';
    const t = this.#words();
    if (item.role === 'user') {
      if (item.status === 'pending') {
        meta.replaceChildren(t('message.sending'));
      } else if (item.status === 'failed') {
        meta.classList.add('failed');
        const reason = item.error
          ? messageErrorSentence(
              item.error,
              {
                profileTitle: this.#profileTitle(item.profile),
                newConversation: !item.conversationId,
              },
              t,
            )
          : null;
        meta.replaceChildren(
          `${t('message.notSent')} ${reason ?? ''}`.trim(),
          h(
            'button',
            {
              class: 'link-button',
              type: 'button',
              'data-action': 'retry',
              'data-id': item.id,
              'data-testid': 'retry',
            },
            [t('message.retry')],
          ),
          h(
            'button',
            { class: 'link-button', type: 'button', 'data-action': 'discard', 'data-id': item.id },
            [t('message.discard')],
          ),
        );
      } else {
        meta.replaceChildren();
      }
      meta.hidden = meta.childNodes.length === 0;
      return;
    }
    if (item.status === 'streaming') {
      meta.replaceChildren();
    } else if (item.status === 'cancelled') {
      meta.replaceChildren(t('message.stopped'));
    } else if (item.status === 'interrupted') {
      const reason = item.error ? errorSentence(item.error, t) : null;
      meta.replaceChildren(reason ?? t('message.interrupted'));
    } else {
      const rating = this.#ratings.get(item.id);
      const up = h(
        'button',
        {
          type: 'button',
          'data-action': 'up',
          'data-id': item.id,
          'data-testid': 'feedback-up',
          'aria-label': t('feedback.upLabel'),
          'aria-pressed': String(rating === 'up'),
          title: t('feedback.up'),
        },
        [icon('up')],
      );
      const down = h(
        'button',
        {
          type: 'button',
          'data-action': 'down',
          'data-id': item.id,
          'data-testid': 'feedback-down',
          'aria-label': t('feedback.downLabel'),
          'aria-pressed': String(rating === 'down'),
          title: t('feedback.down'),
        },
        [icon('down')],
      );
      meta.replaceChildren(
        h('div', { class: 'feedback' }, [up, down]),
        rating ? t('feedback.thanks') : '',
      );
    }
    meta.hidden = meta.childNodes.length === 0;
  }

  /**
   * @param {ConfirmationItem} item
   * @returns {HTMLElement}
   */
  #createConfirmation(item) {
    const t = this.#words();
    const button = (/** @type {string} */ action, /** @type {string} */ text) =>
      h(
        'button',
        {
          class: action,
          type: 'button',
          'data-action': action,
          'data-id': item.token,
          'data-testid': action,
        },
        [text],
      );
    const editable = editableParams(item.params ?? {}, checkedFields(item.fields));
    const edit = button('edit', t('card.edit'));
    edit.setAttribute('aria-expanded', 'false');
    edit.hidden = editable.length === 0;
    const card = h(
      'div',
      {
        class: item.destructive === true ? 'confirm destructive' : 'confirm',
        role: 'group',
        'aria-label': t('card.label', { summary: item.summary }),
        'data-testid': 'confirm-card',
        'data-token': item.token,
      },
      [
        h('p', { class: 'title' }, [
          actionTitle(item.action, item.source, t),
          ...(item.source
            ? [
                h('span', { class: 'via', 'data-testid': 'confirm-source' }, [
                  confirmSourceLine(item.source, t),
                ]),
              ]
            : []),
        ]),
        h('p', { class: 'summary', 'data-testid': 'confirm-summary' }),
        ...(item.destructive === true
          ? [
              h('p', { class: 'warning', role: 'note', 'data-testid': 'confirm-warning' }, [
                t('card.destructive'),
              ]),
            ]
          : []),
        h('dl', { class: 'params' }),
        h('div', { class: 'param-form' }),
        h('p', { class: 'card-error', role: 'alert', 'data-testid': 'card-error' }),
        h('p', { class: 'countdown', 'data-testid': 'countdown', 'aria-live': 'off' }),
        h('div', { class: 'buttons' }, [
          button('approve', t('card.approve')),
          edit,
          button('reject', t('card.reject')),
        ]),
        h('div', { class: 'result', 'data-testid': 'action-result', role: 'status' }),
      ],
    );
    return card;
  }

  /**
   * The card's params and summary, drawn again when a decision brings approved values.
   *
   * @param {HTMLElement} card
   * @param {ConfirmationItem} item
   */
  #updateParams(card, item) {
    if (this.#renderedParams.get(card) === item.params) return;
    this.#renderedParams.set(card, item.params);
    const fields = checkedFields(item.fields);
    const list = paramList(item.params ?? {}, fields, this.#locale());
    list.hidden = list.childElementCount === 0;
    /** @type {HTMLElement} */ (card.querySelector(':scope > dl.params')).replaceWith(list);
    /** @type {HTMLElement} */ (card.querySelector(':scope > .summary')).textContent = item.summary;
    card.setAttribute('aria-label', this.#words()('card.label', { summary: item.summary }));
    const editable = editableParams(item.params ?? {}, fields);
    this.#editable.set(card, editable);
    /** @type {HTMLElement} */ (card.querySelector(':scope > .param-form')).replaceWith(
      paramForm(editable),
    );
  }

  /**
   * The edits on a card's inputs, or the first problem with them.
   *
   * @param {HTMLElement} card
   * @returns {{edits: Record<string, unknown>} | {problem: string, key: string}}
   */
  readEdits(card) {
    const form = /** @type {HTMLElement} */ (card.querySelector(':scope > .param-form'));
    return readForm(form, this.#editable.get(card) ?? [], this.#words());
  }

  /**
   * @param {HTMLElement} card
   * @param {ConfirmationItem} item
   */
  #updateConfirmation(card, item) {
    card.dataset.status = item.status;
    this.#updateParams(card, item);
    const t = this.#words();
    const buttons = /** @type {HTMLElement} */ (card.querySelector('.buttons'));
    const countdown = /** @type {HTMLElement} */ (card.querySelector('.countdown'));
    const result = /** @type {HTMLElement} */ (card.querySelector('.result'));
    const list = /** @type {HTMLElement} */ (card.querySelector(':scope > dl.params'));
    const form = /** @type {HTMLElement} */ (card.querySelector(':scope > .param-form'));
    const problem = /** @type {HTMLElement} */ (card.querySelector(':scope > .card-error'));
    const editButton = /** @type {HTMLElement} */ (buttons.querySelector('.edit'));
    const outcome = confirmationResult(item, t);
    if (outcome) {
      this.#deciding.delete(item.token);
      this.#editing.delete(item.token);
      this.#cardErrors.delete(item.token);
      form.hidden = true;
      problem.hidden = true;
      list.hidden = list.childElementCount === 0;
      // A decided card changes once more at most (when the outcome arrives); skip repeats.
      const signature = `${item.status}|${item.outcome ? 'outcome' : ''}`;
      if (card.dataset.rendered === signature) return;
      card.dataset.rendered = signature;
      buttons.hidden = true;
      countdown.hidden = true;
      result.hidden = false;
      result.dataset.tone = outcome.tone;
      const fields = resultFields(item.outcome?.result, 6, t);
      const table = h('dl', { class: 'result-fields' });
      for (const [label, value] of fields) table.append(h('dt', {}, [label]), h('dd', {}, [value]));
      result.replaceChildren(h('div', {}, [outcome.text]), ...(fields.length ? [table] : []));
      return;
    }
    const editing = this.#editing.has(item.token);
    const editable = this.#editable.get(card) ?? [];
    form.hidden = !editing;
    list.hidden = editing || list.childElementCount === 0;
    editButton.hidden = editable.length === 0;
    editButton.textContent = editing ? t('card.editDone') : t('card.edit');
    editButton.setAttribute('aria-expanded', String(editing));
    const error = this.#cardErrors.get(item.token);
    problem.hidden = !error;
    problem.textContent = error ? t('card.invalid', { problem: error }) : '';
    const deciding = this.#deciding.get(item.token);
    const left = formatCountdown(Date.parse(item.expiresAt) - Date.now());
    for (const button of buttons.querySelectorAll('button'))
      button.disabled = Boolean(deciding) || left === null;
    buttons.hidden = false;
    countdown.hidden = false;
    countdown.textContent = left === null ? t('card.expired') : t('card.expiresIn', { time: left });
    if (deciding) {
      result.hidden = false;
      result.dataset.tone = 'busy';
      result.textContent = deciding === 'approve' ? t('card.approving') : t('card.rejecting');
    } else {
      result.hidden = true;
    }
  }
}
