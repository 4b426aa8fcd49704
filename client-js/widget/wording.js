/**
 * What the widget says to people: error codes, close codes, tool progress and action outcomes
 * in plain words. Pure functions, so the wording can be tested and translated in one place.
 *
 * @module wording
 */

import { plainText } from './format.js';

/** @typedef {import('../types.js').ErrorFrame} ErrorFrame */
/** @typedef {import('../types.js').ToolItem} ToolItem */
/** @typedef {import('../types.js').ConfirmationItem} ConfirmationItem */
/** @typedef {import('../types.js').Citation} Citation */

const TRY_AGAIN_SOON = 'The assistant is temporarily unavailable. Please try again in a moment.';
const OUR_SIDE = 'Something went wrong on our side. Please try again.';

/** @type {Record<string, string>} */
const ERROR_SENTENCES = {
  invalid_json: OUR_SIDE,
  invalid_frame: OUR_SIDE,
  unknown_type: OUR_SIDE,
  missing_field: OUR_SIDE,
  invalid_field: OUR_SIDE,
  hello_required: OUR_SIDE,
  frame_too_large: 'That message is too large to send.',
  unsupported_protocol:
    'This page uses an outdated version of the assistant. Please reload the page.',
  unauthenticated: 'Your session has ended. Please reload the page to sign in again.',
  token_expired: 'Your session has expired. Please reload the page to sign in again.',
  forbidden: "You don't have permission to do that.",
  conversation_not_found: "That conversation doesn't exist any more. Start a new one.",
  message_not_found: "That message doesn't exist any more.",
  confirmation_not_found: "That request doesn't exist any more.",
  confirmation_not_pending: 'That request was already decided.',
  profile_not_found: "That assistant isn't available. Choose another one and send again.",
  confirmation_expired:
    'That request expired before it was confirmed. Ask again if you still want it.',
  turn_in_progress: 'The assistant is still answering. Wait for it to finish or press Stop.',
  no_active_turn: 'There is nothing to stop.',
  message_too_long: 'That message is too long. Please shorten it.',
  conversation_full: 'This conversation is full. Please start a new one.',
  rate_limited: "You're sending messages faster than allowed. Please wait a moment.",
  too_many_connections: 'Too many assistant windows are open. Close a few tabs and try again.',
  flooding: "You're sending too much too quickly. Please wait a moment.",
  budget_exceeded:
    "Your organisation's assistant budget is used up. Please contact your administrator.",
  budget_warning: "Heads up: your organisation's assistant budget is nearly used up.",
  model_error: TRY_AGAIN_SOON,
  model_unavailable: TRY_AGAIN_SOON,
  model_rate_limited: 'The assistant is busy right now. Please try again in a moment.',
  model_timeout: 'The assistant took too long to answer. Please try again.',
  stream_interrupted: 'The answer was interrupted. Please ask again.',
  store_unavailable: OUR_SIDE,
  turn_interrupted: 'The answer was interrupted. Please ask again.',
  tool_error: 'A lookup failed while answering.',
  internal_error: OUR_SIDE,
  // Raised by the client (or the widget) itself.
  export_failed: 'The download failed. Please try again.',
  queue_full: 'You are offline and too much is waiting to be sent. Please wait for the connection.',
  token_unavailable: 'Could not sign you in to the assistant. Retrying…',
  connect_failed: 'Could not reach the assistant. Retrying…',
};

/** Errors that are noise for a person (the client recovers on its own or they are protocol detail). */
const SILENT = new Set(['invalid_json', 'invalid_frame']);

/**
 * A sentence for an error, or null when the person need not see it.
 *
 * @param {ErrorFrame} error
 * @returns {string | null}
 */
export function errorSentence(error) {
  if (error.local && SILENT.has(error.code)) return null;
  const sentence = ERROR_SENTENCES[error.code];
  if (sentence) return sentence;
  return error.retryable ? 'Something went wrong. Please try again.' : 'Something went wrong.';
}

/**
 * A sentence for an error the server answered a user message with, shown under the message.
 * `profile_not_found` and `forbidden` on a message are about its profile (the assistant the
 * conversation runs under), so they say which one when it is known.
 *
 * @param {ErrorFrame} error
 * @param {{profileTitle?: string, newConversation?: boolean}} [about] the message's profile
 *   title, and whether the message starts a conversation
 * @returns {string | null}
 */
export function messageErrorSentence(error, about = {}) {
  const { profileTitle, newConversation = false } = about;
  if (error.code === 'profile_not_found') {
    return profileTitle
      ? `The assistant “${profileTitle}” isn't available. Choose another one and send again.`
      : ERROR_SENTENCES.profile_not_found;
  }
  if (error.code === 'forbidden') {
    if (!newConversation) {
      return (
        "You no longer have access to this conversation's assistant. " +
        'Please start a new conversation.'
      );
    }
    return profileTitle
      ? `You don't have access to the assistant “${profileTitle}”. Choose another one and send again.`
      : "You don't have access to that assistant. Choose another one and send again.";
  }
  return errorSentence(error);
}

/** The label of the profile switcher, shown while a new conversation is on screen. */
export const PROFILE_SWITCHER_LABEL = 'New conversation with';

/** What an empty conversation says when its profile has no greeting of its own. */
export const DEFAULT_GREETING =
  'Ask about your orders, balances and customers. Actions always ask you first.';

/**
 * The words around one cited source: the marker's accessible name, the label of the button
 * that shows the cited passage.
 *
 * @param {Citation} citation
 * @returns {{marker: string, show: string}}
 */
export function sourceWording(citation) {
  return {
    marker: `Source ${citation.n}: ${citation.title}`,
    show: `Show the passage from ${citation.title}`,
  };
}

/**
 * The line of a confirmation card that names the host app that will run the action.
 *
 * @param {string} source
 * @returns {string}
 */
export function confirmSourceLine(source) {
  return `via ${source}`;
}

/** The warning on the card of an action its host marks destructive. */
export const DESTRUCTIVE_WARNING =
  'Warning: this action may delete or overwrite data, and may not be undoable.';

/**
 * The action's name for its card title: a remote tool is named `<source>__<tool>`, and the
 * source is shown on a line of its own, so the prefix is left out here.
 *
 * @param {string} action
 * @param {string | undefined} source
 * @returns {string}
 */
export function actionTitle(action, source) {
  const prefix = source ? `${source}__` : '';
  const name = prefix && action.startsWith(prefix) ? action.slice(prefix.length) : action;
  return `Confirm: ${humanize(name)}`;
}

/** @type {Record<number, string>} */
const CLOSE_SENTENCES = {
  1008: 'The assistant closed the connection.',
  1009: 'A message was too large, so the assistant closed the connection.',
  4400: 'The assistant could not start the conversation.',
  4401: 'Your session has ended. Please reload the page to sign in again.',
  4403: "This site isn't allowed to use the assistant.",
  4426: 'This page uses an outdated version of the assistant. Please reload the page.',
};

/**
 * A sentence for a connection that closed for good.
 *
 * @param {number} code
 * @returns {string}
 */
export function closeSentence(code) {
  return CLOSE_SENTENCES[code] ?? 'The assistant is not available right now.';
}

/**
 * `approve_purchase_order` → `approve purchase order`.
 *
 * @param {string} name
 * @returns {string}
 */
export function humanize(name) {
  return name.replace(/[_-]+/g, ' ').trim();
}

/**
 * One progress line for a tool call.
 *
 * @param {ToolItem} tool
 * @returns {string}
 */
export function toolLine(tool) {
  const name = capitalize(humanize(tool.name));
  if (tool.status === 'running') return `${name}…`;
  if (tool.status === 'failed')
    return tool.summary ? `${name} failed: ${tool.summary}` : `${name} failed`;
  return tool.summary ? `${name}: ${tool.summary}` : `${name}: done`;
}

/**
 * @param {string} text
 * @returns {string}
 */
export function capitalize(text) {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** Words that read better in capitals in a field label. */
const ACRONYMS = new Set(['id', 'po', 'so', 'sku', 'vat', 'iban', 'url', 'api', 'crm', 'erp']);

/**
 * A field name as a label: `po_number` → `PO number`, `decided_by` → `Decided by`.
 *
 * @param {string} key
 * @returns {string}
 */
export function fieldLabel(key) {
  const words = humanize(key)
    .split(' ')
    .map((word) => (ACRONYMS.has(word.toLowerCase()) ? word.toUpperCase() : word));
  return capitalize(words.join(' '));
}

/**
 * A short text for an action's result value (any JSON); empty for a record, whose fields
 * {@link resultFields} lists instead.
 *
 * @param {unknown} result
 * @returns {string}
 */
export function describeResult(result) {
  if (result === null || result === undefined) return '';
  if (typeof result === 'string') return result;
  if (typeof result === 'object' && !Array.isArray(result)) {
    const record = /** @type {Record<string, unknown>} */ (result);
    for (const key of ['message', 'summary']) {
      if (typeof record[key] === 'string') return /** @type {string} */ (record[key]);
    }
    return '';
  }
  const text = plainText(result, undefined);
  return text.length > 160 ? `${text.slice(0, 157)}…` : text;
}

/**
 * The simple fields of a record result as label/value pairs, for a small table under the
 * outcome ("Number: PO-1002", "Status: approved"). Nested values and empty fields are left out.
 *
 * @param {unknown} result
 * @param {number} [limit]
 * @returns {[string, string][]}
 */
export function resultFields(result, limit = 6) {
  if (typeof result !== 'object' || result === null || Array.isArray(result)) return [];
  const record = /** @type {Record<string, unknown>} */ (result);
  if (typeof record.message === 'string' || typeof record.summary === 'string') return [];
  /** @type {[string, string][]} */
  const fields = [];
  for (const [key, value] of Object.entries(record)) {
    if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean')
      continue;
    if (value === '') continue;
    fields.push([fieldLabel(key), formatParam(value)]);
    if (fields.length === limit) break;
  }
  return fields;
}

/**
 * What a decided confirmation card says instead of its buttons, or null while pending.
 *
 * @param {ConfirmationItem} item
 * @returns {{text: string, tone: 'ok' | 'bad' | 'neutral' | 'busy'} | null}
 */
export function confirmationResult(item) {
  if (item.outcome) {
    const detail = describeResult(item.outcome.result);
    if (item.outcome.ok) return { text: detail ? `Done: ${detail}` : 'Done.', tone: 'ok' };
    return { text: detail ? `The action failed: ${detail}` : 'The action failed.', tone: 'bad' };
  }
  switch (item.status) {
    case 'approved':
      return { text: 'Approved. Running…', tone: 'busy' };
    case 'rejected':
      return { text: 'Rejected. Nothing was done.', tone: 'neutral' };
    case 'expired':
      return { text: 'Expired. Nothing was done.', tone: 'neutral' };
    case 'cancelled':
      return { text: 'Cancelled. Nothing was done.', tone: 'neutral' };
    default:
      return null;
  }
}

/**
 * `m:ss` until a deadline, or null once it passed.
 *
 * @param {number} remainingMs
 * @returns {string | null}
 */
export function formatCountdown(remainingMs) {
  if (!(remainingMs > 0)) return null;
  const seconds = Math.ceil(remainingMs / 1000);
  const minutes = Math.floor(seconds / 60);
  return `${minutes}:${String(seconds % 60).padStart(2, '0')}`;
}

/**
 * A value from a confirmation's params, shown as text.
 *
 * @param {unknown} value
 * @returns {string}
 */
export function formatParam(value) {
  if (typeof value === 'string') return value;
  if (typeof value === 'number') return value.toLocaleString();
  if (typeof value === 'boolean') return value ? 'yes' : 'no';
  if (value === null || value === undefined) return '—';
  return plainText(value, undefined);
}
