/**
 * Everything the widget does with the user's conversations beside showing one: the list
 * (conversations.js) and the "talk to a person" bar (escalation.js), the REST calls behind them
 * (rest.js), which conversations had activity while not on screen, and which still lack their
 * stored messages because the `ready` snapshot held only the newest one's.
 *
 * The element owns the conversation on screen; this part asks it to open one and tells it what
 * went wrong, in the widget's words.
 *
 * @module conversation-panel
 */

import { ConversationList } from './conversations.js';
import { EscalationBar } from './escalation.js';

/** @typedef {import('../model.js').ConversationModel} ConversationModel */
/** @typedef {import('../types.js').ReadyFrame} ReadyFrame */
/** @typedef {import('../types.js').ChangeDetail} ChangeDetail */
/** @typedef {import('./catalog.js').Translate} Translate */
/** @typedef {import('./rest.js').RestApi} RestApi */

/** Model changes that count as activity in a conversation: they mark it unread elsewhere. */
const ACTIVITY = new Set(['message', 'response', 'confirm_request', 'action_executed']);

/**
 * @typedef {object} PanelHost what the element lends the panel
 * @property {() => string | undefined} current the conversation on screen
 * @property {(conversationId: string) => void} open put a conversation on screen
 * @property {() => void} leave show a new, empty conversation instead of the current one
 * @property {() => void} render draw again soon
 * @property {(sentence: string) => void} showError
 * @property {() => Translate} words
 * @property {() => ConversationModel | undefined} model
 */

/** The conversations list, the escalation bar, and what they need to know. */
export class ConversationPanel {
  /** @type {Set<string>} conversations with activity not seen yet */
  #unread = new Set();
  /** @type {Map<string, number>} when each conversation last had activity in this tab */
  #activity = new Map();
  /**
   * @type {Set<string>} conversations that existed before this tab's snapshot but whose stored
   * messages it lacks: loaded when first shown. One begun since arrives whole in live frames.
   */
  #historyMissing = new Set();
  #escalating = false;
  #host;
  /** @type {RestApi | null} */
  #rest = null;

  /** @param {PanelHost} host */
  constructor(host) {
    this.#host = host;
    this.list = new ConversationList({
      onOpen: (id) => {
        this.list.open = false;
        host.open(id);
      },
      onRename: (id, title) => this.#change(id, { title }),
      onArchive: (id) => this.#change(id, { archived: true }),
      onChange: host.render,
    });
    this.escalation = new EscalationBar(() => this.#escalate());
  }

  /** @param {RestApi} rest the REST calls of the current connection */
  set rest(rest) {
    this.#rest = rest;
  }

  /** @returns {boolean} whether a conversation not on screen had activity */
  get hasUnread() {
    return this.#unread.size > 0;
  }

  /** Forget everything: a different server or user. */
  reset() {
    this.#unread.clear();
    this.#activity.clear();
    this.#historyMissing.clear();
    this.list.open = false;
  }

  /**
   * A rebuilt model holds the snapshot's conversation only: the others load when shown.
   *
   * @param {ReadyFrame} ready
   */
  snapshot(ready) {
    if (ready.resumed) return;
    this.#historyMissing = new Set(
      (ready.conversations ?? []).map((summary) => summary.conversation_id),
    );
    for (const message of ready.messages ?? []) {
      this.#historyMissing.delete(message.conversation_id);
    }
  }

  /**
   * Note activity in a conversation; one not on screen is marked unread.
   *
   * @param {ChangeDetail} change
   */
  noticed(change) {
    const id = change.conversationId;
    if (
      change.reason === 'conversation_updated' &&
      id !== undefined &&
      id === this.#host.current() &&
      this.#host.model()?.conversations.get(id)?.status === 'archived'
    ) {
      // Archived in another tab (or by the host app): this tab leaves it as well.
      this.#host.leave();
      return;
    }
    if (id === undefined || !ACTIVITY.has(change.reason)) return;
    this.#activity.set(id, Date.now());
    if (id !== this.#host.current()) this.#unread.add(id);
  }

  /**
   * A conversation came on screen: it is read, and its stored messages load if missing.
   *
   * @param {string} conversationId
   */
  shown(conversationId) {
    this.#unread.delete(conversationId);
    const model = this.#host.model();
    const rest = this.#rest;
    if (!model || !rest || !this.#historyMissing.delete(conversationId)) return;
    rest.history(conversationId).then(
      (messages) => model.addHistory(conversationId, messages),
      () => {
        this.#historyMissing.add(conversationId);
        this.#host.showError(this.#host.words()('conversations.loadFailed'));
      },
    );
  }

  /**
   * @param {{connected: boolean, listButton: HTMLElement}} view
   */
  update({ connected, listButton }) {
    const model = this.#host.model();
    const current = this.#host.current();
    const t = this.#host.words();
    this.list.update({
      conversations: [...(model?.conversations.values() ?? [])],
      current,
      unread: this.#unread,
      activity: this.#activity,
      t,
    });
    listButton.setAttribute('aria-expanded', String(this.list.open));
    listButton.toggleAttribute('data-unread', this.hasUnread);
    this.escalation.update({
      conversationId: current,
      status: current !== undefined ? model?.conversation(current)?.status : undefined,
      busy: this.#escalating,
      connected,
      t,
    });
  }

  /**
   * Rename or archive a conversation; every tab (this one too) hears of it from the server.
   *
   * @param {string} conversationId
   * @param {{title?: string, archived?: boolean}} change
   */
  #change(conversationId, change) {
    const rest = this.#rest;
    if (!rest) return;
    rest.update(conversationId, change).then(
      () => {
        if (change.archived && conversationId === this.#host.current()) this.#host.leave();
      },
      () => this.#host.showError(this.#host.words()('conversations.changeFailed')),
    );
  }

  /** Hand the conversation on screen to a person. */
  #escalate() {
    const conversationId = this.#host.current();
    const rest = this.#rest;
    if (conversationId === undefined || !rest || this.#escalating) return;
    this.#escalating = true;
    this.#host.render();
    const t = this.#host.words();
    rest
      .escalate(conversationId, t('escalate.reason'))
      .catch(() => this.#host.showError(t('escalate.failed')))
      .finally(() => {
        this.#escalating = false;
        this.#host.render();
      });
  }
}
