/**
 * The list of the user's conversations in the widget: newest first, each with its title, a
 * marker when something happened in it while another one was on screen, and whether a person
 * has taken it over; a click switches to it, and each can be renamed or archived in place.
 *
 * The list only draws and reports what the user did; the widget makes the REST calls, and every
 * tab learns the outcome from the server's `conversation_updated` frame.
 *
 * @module conversations
 */

import { h } from './dom.js';

/** @typedef {import('../types.js').Conversation} Conversation */
/** @typedef {import('./catalog.js').Translate} Translate */

/**
 * @typedef {object} ListHandlers
 * @property {(conversationId: string) => void} onOpen
 * @property {(conversationId: string, title: string) => void} onRename
 * @property {(conversationId: string) => void} onArchive
 * @property {() => void} onChange the list wants drawing again (a rename began or ended)
 */

/**
 * @typedef {object} ListView
 * @property {Conversation[]} conversations every conversation the model knows
 * @property {string | undefined} current the one on screen
 * @property {Set<string>} unread the ones with activity not yet seen
 * @property {Map<string, number>} activity when each last had activity here (ms)
 * @property {Translate} t
 */

/**
 * The conversations to list, newest first: archived ones are left out, and a conversation's
 * age is its last activity seen here or, before any, the time the server gave.
 *
 * @param {Conversation[]} conversations
 * @param {Map<string, number>} activity
 * @returns {Conversation[]}
 */
export function listed(conversations, activity) {
  const when = (/** @type {Conversation} */ c) =>
    Math.max(activity.get(c.id) ?? 0, Date.parse(c.updatedAt ?? '') || 0);
  return conversations
    .filter((conversation) => conversation.status !== 'archived')
    .sort((a, b) => when(b) - when(a));
}

/** The conversations panel of the widget. */
export class ConversationList {
  /** the panel, shown over the transcript while open */
  node = h('nav', { class: 'conversations', 'data-testid': 'conversation-list' });
  #list = h('ul');
  #empty = h('p', { class: 'conversations-empty' });
  #handlers;
  /** @type {string | undefined} the conversation being renamed */
  #renaming = undefined;
  #signature = '';

  /** @param {ListHandlers} handlers */
  constructor(handlers) {
    this.#handlers = handlers;
    this.node.append(this.#empty, this.#list);
    this.node.hidden = true;
    this.node.addEventListener('click', (event) => this.#onClick(event));
    this.node.addEventListener('submit', (event) => this.#onSubmit(event));
    this.node.addEventListener('keydown', (event) => {
      if (event.key === 'Escape' && this.#renaming !== undefined) {
        event.stopPropagation();
        this.#renameOnly(undefined);
      }
    });
  }

  /** @returns {boolean} */
  get open() {
    return !this.node.hidden;
  }

  /** @param {boolean} open */
  set open(open) {
    this.node.hidden = !open;
    if (!open) this.#renaming = undefined;
    this.#signature = '';
  }

  /** Forget what was drawn, so the next update draws again (a language change). */
  invalidate() {
    this.#signature = '';
  }

  /** @param {ListView} view */
  update(view) {
    const { t } = view;
    this.node.setAttribute('aria-label', t('conversations.label'));
    const shown = listed(view.conversations, view.activity);
    const signature = JSON.stringify([
      shown.map((c) => [c.id, c.title, c.status, view.unread.has(c.id)]),
      view.current,
      this.#renaming,
      t('conversations.label'),
    ]);
    if (signature === this.#signature || this.node.hidden) return;
    this.#signature = signature;
    this.#empty.textContent = t('conversations.empty');
    this.#empty.hidden = shown.length > 0;
    this.#list.replaceChildren(
      ...shown.map((conversation) =>
        conversation.id === this.#renaming
          ? this.#renameRow(conversation, t)
          : this.#row(conversation, view, t),
      ),
    );
    /** @type {HTMLInputElement | null} */ (this.#list.querySelector('input'))?.focus();
  }

  /**
   * @param {Conversation} conversation
   * @param {ListView} view
   * @param {Translate} t
   * @returns {HTMLElement}
   */
  #row(conversation, view, t) {
    const title = conversation.title || t('conversations.untitled');
    const unread = view.unread.has(conversation.id);
    const open = h(
      'button',
      {
        type: 'button',
        class: 'conversation-open',
        'data-action': 'open',
        'data-id': conversation.id,
        'data-testid': 'conversation-item',
        ...(conversation.id === view.current ? { 'aria-current': 'true' } : {}),
      },
      [
        h('span', { class: 'conversation-title' }, [title]),
        ...(unread
          ? [
              h(
                'span',
                { class: 'unread', 'data-testid': 'unread', title: t('conversations.unread') },
                [h('span', { class: 'visually-hidden' }, [t('conversations.unread')])],
              ),
            ]
          : []),
        ...(conversation.status === 'escalated'
          ? [
              h('span', { class: 'tag', 'data-testid': 'escalated-tag' }, [
                t('conversations.escalated'),
              ]),
            ]
          : []),
      ],
    );
    const rename = h(
      'button',
      {
        type: 'button',
        class: 'link-button',
        'data-action': 'rename',
        'data-id': conversation.id,
        'data-testid': 'conversation-rename',
        'aria-label': t('conversations.renameLabel', { title }),
      },
      [t('conversations.rename')],
    );
    const archive = h(
      'button',
      {
        type: 'button',
        class: 'link-button',
        'data-action': 'archive',
        'data-id': conversation.id,
        'data-testid': 'conversation-archive',
        'aria-label': t('conversations.archiveLabel', { title }),
      },
      [t('conversations.archive')],
    );
    return h('li', { 'data-id': conversation.id, ...(unread ? { 'data-unread': '' } : {}) }, [
      open,
      rename,
      archive,
    ]);
  }

  /**
   * @param {Conversation} conversation
   * @param {Translate} t
   * @returns {HTMLElement}
   */
  #renameRow(conversation, t) {
    const title = conversation.title || t('conversations.untitled');
    const input = h('input', {
      type: 'text',
      name: 'title',
      maxlength: '200',
      required: '',
      'data-testid': 'conversation-title-input',
      'aria-label': t('conversations.renameLabel', { title }),
    });
    input.value = conversation.title;
    const form = h('form', { class: 'rename', 'data-id': conversation.id }, [
      input,
      h('button', { type: 'submit', 'data-testid': 'conversation-save' }, [
        t('conversations.save'),
      ]),
      h('button', { type: 'button', class: 'link-button', 'data-action': 'cancel-rename' }, [
        t('conversations.cancel'),
      ]),
    ]);
    return h('li', { 'data-id': conversation.id }, [form]);
  }

  /** @param {Event} event */
  #onClick(event) {
    const button = /** @type {HTMLElement | null} */ (event.target)?.closest?.('button');
    const id = button?.dataset.id;
    const action = button?.dataset.action;
    if (action === 'cancel-rename') this.#renameOnly(undefined);
    if (!id) return;
    if (action === 'open') this.#handlers.onOpen(id);
    else if (action === 'archive') this.#handlers.onArchive(id);
    else if (action === 'rename') this.#renameOnly(id);
  }

  /**
   * Show the rename form in one row, or in none.
   *
   * @param {string | undefined} conversationId
   */
  #renameOnly(conversationId) {
    this.#renaming = conversationId;
    this.#signature = '';
    this.#handlers.onChange();
  }

  /** @param {Event} event */
  #onSubmit(event) {
    event.preventDefault();
    const form = /** @type {HTMLFormElement} */ (event.target);
    const id = form.dataset.id;
    const input = /** @type {HTMLInputElement | null} */ (form.querySelector('input'));
    const title = input?.value.trim() ?? '';
    if (id && title) this.#handlers.onRename(id, title);
    this.#renameOnly(undefined);
  }
}
