/**
 * "Talk to a person": the button that hands the conversation on screen to the help desk, and
 * the line that says a person has been asked, shown in every tab once the server's
 * `conversation_updated` frame marks the conversation `escalated`.
 *
 * @module escalation
 */

import { h } from './dom.js';

/** @typedef {import('./catalog.js').Translate} Translate */

/**
 * @typedef {object} EscalationView
 * @property {string | undefined} conversationId the conversation on screen (none: a new one)
 * @property {string | undefined} status its status
 * @property {boolean} busy the request is on its way
 * @property {boolean} connected
 * @property {Translate} t
 */

/** The escalation bar under the header. */
export class EscalationBar {
  node = h('div', { class: 'escalation', 'data-testid': 'escalation' });
  #button = h('button', { type: 'button', class: 'link-button', 'data-testid': 'escalate' });
  #status = h('p', { class: 'escalated', role: 'status', 'data-testid': 'escalated' });

  /** @param {() => void} onEscalate */
  constructor(onEscalate) {
    this.node.append(this.#status, this.#button);
    this.#button.addEventListener('click', onEscalate);
  }

  /** @param {EscalationView} view */
  update({ conversationId, status, busy, connected, t }) {
    const escalated = status === 'escalated';
    // A conversation is escalated once it exists and only while active (the server says 409
    // otherwise); a new, empty one has nothing to hand over yet.
    this.#button.hidden = conversationId === undefined || escalated;
    this.#button.disabled = busy || !connected;
    this.#button.textContent = busy ? t('escalate.busy') : t('escalate.button');
    this.#status.hidden = !escalated;
    this.#status.textContent = escalated ? t('escalate.done') : '';
    this.node.hidden = this.#button.hidden && this.#status.hidden;
  }
}
