/**
 * What the widget says to people: error codes, close codes, tool progress and action outcomes
 * in plain words. Pure functions over a {@link Translate} lookup of the message catalog
 * (catalog.js), English when none is given, so the wording can be tested in every language.
 *
 * @module wording
 */

import { CATALOGS, english } from './catalog.js';
import { plainText } from './format.js';

/** @typedef {import('./catalog.js').Translate} Translate */

/** @typedef {import('../types.js').ErrorFrame} ErrorFrame */
/** @typedef {import('../types.js').ToolItem} ToolItem */
/** @typedef {import('../types.js').ConfirmationItem} ConfirmationItem */
/** @typedef {import('../types.js').Citation} Citation */

/** Error codes the catalog has a sentence for (`error.<code>`). */
const KNOWN_ERRORS = new Set(
  Object.keys(CATALOGS.en)
    .filter((id) => id.startsWith('error.'))
    .map((id) => id.slice('error.'.length)),
);

/** Errors that are noise for a person (the client recovers on its own or they are protocol detail). */
const SILENT = new Set(['invalid_json', 'invalid_frame']);

/**
 * A sentence for an error, or null when the person need not see it.
 *
 * @param {ErrorFrame} error
 * @param {Translate} [t]
 * @returns {string | null}
 */
export function errorSentence(error, t = english) {
  if (error.local && SILENT.has(error.code)) return null;
  if (KNOWN_ERRORS.has(error.code)) return t(`error.${error.code}`);
  return error.retryable ? t('error.genericRetry') : t('error.generic');
}

/**
 * A sentence for an error the server answered a user message with, shown under the message.
 * `profile_not_found` and `forbidden` on a message are about its profile (the assistant the
 * conversation runs under), so they say which one when it is known.
 *
 * @param {ErrorFrame} error
 * @param {{profileTitle?: string, newConversation?: boolean}} [about] the message's profile
 *   title, and whether the message starts a conversation
 * @param {Translate} [t]
 * @returns {string | null}
 */
export function messageErrorSentence(error, about = {}, t = english) {
  const { profileTitle, newConversation = false } = about;
  if (error.code === 'profile_not_found') {
    return profileTitle
      ? t('error.profile_unavailable', { profile: profileTitle })
      : t('error.profile_not_found');
  }
  if (error.code === 'forbidden') {
    if (!newConversation) return t('error.profile_lost');
    return profileTitle
      ? t('error.profile_forbidden', { profile: profileTitle })
      : t('error.profile_forbidden_unnamed');
  }
  return errorSentence(error, t);
}

/**
 * The words around one cited source: the marker's accessible name, the label of the button
 * that shows the cited passage.
 *
 * @param {Citation} citation
 * @param {Translate} [t]
 * @returns {{marker: string, show: string}}
 */
export function sourceWording(citation, t = english) {
  return {
    marker: t('source.marker', { n: citation.n, title: citation.title }),
    show: t('source.show', { title: citation.title }),
  };
}

/**
 * The line of a confirmation card that names the host app that will run the action.
 *
 * @param {string} source
 * @param {Translate} [t]
 * @returns {string}
 */
export function confirmSourceLine(source, t = english) {
  return t('card.via', { source });
}

/**
 * The action's name for its card title: a remote tool is named `<source>__<tool>`, and the
 * source is shown on a line of its own, so the prefix is left out here.
 *
 * @param {string} action
 * @param {string | undefined} source
 * @param {Translate} [t]
 * @returns {string}
 */
export function actionTitle(action, source, t = english) {
  const prefix = source ? `${source}__` : '';
  const name = prefix && action.startsWith(prefix) ? action.slice(prefix.length) : action;
  return t('card.title', { action: humanize(name) });
}

/** Close codes the catalog has a sentence for (`close.<code>`). */
const KNOWN_CLOSE_CODES = new Set([1008, 1009, 4400, 4401, 4403, 4426]);

/**
 * A sentence for a connection that closed for good.
 *
 * @param {number} code
 * @param {Translate} [t]
 * @returns {string}
 */
export function closeSentence(code, t = english) {
  return KNOWN_CLOSE_CODES.has(code) ? t(`close.${code}`) : t('close.other');
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
 * @param {Translate} [t]
 * @returns {string}
 */
export function toolLine(tool, t = english) {
  // `erp__cash_balance`, `page__open_record`: the source prefix says nothing to the user.
  const cut = tool.name.lastIndexOf('__');
  const bare = cut < 0 ? tool.name : tool.name.slice(cut + 2);
  const name = capitalize(humanize(bare));
  const summary = tool.summary;
  if (tool.status === 'running') return t('tool.running', { name });
  if (tool.status === 'failed')
    return summary ? t('tool.failedWith', { name, summary }) : t('tool.failed', { name });
  return summary ? t('tool.doneWith', { name, summary }) : t('tool.done', { name });
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
 * @param {Translate} [t]
 * @returns {[string, string][]}
 */
export function resultFields(result, limit = 6, t = english) {
  if (typeof result !== 'object' || result === null || Array.isArray(result)) return [];
  const record = /** @type {Record<string, unknown>} */ (result);
  if (typeof record.message === 'string' || typeof record.summary === 'string') return [];
  /** @type {[string, string][]} */
  const fields = [];
  for (const [key, value] of Object.entries(record)) {
    if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean')
      continue;
    if (value === '') continue;
    fields.push([fieldLabel(key), formatParam(value, t)]);
    if (fields.length === limit) break;
  }
  return fields;
}

/**
 * What a decided confirmation card says instead of its buttons, or null while pending.
 *
 * @param {ConfirmationItem} item
 * @param {Translate} [t]
 * @returns {{text: string, tone: 'ok' | 'bad' | 'neutral' | 'busy'} | null}
 */
export function confirmationResult(item, t = english) {
  if (item.outcome) {
    const detail = describeResult(item.outcome.result);
    if (item.outcome.ok) {
      return { text: detail ? t('card.doneWith', { detail }) : t('card.done'), tone: 'ok' };
    }
    return { text: detail ? t('card.failedWith', { detail }) : t('card.failed'), tone: 'bad' };
  }
  switch (item.status) {
    case 'approved':
      return { text: t('card.approved'), tone: 'busy' };
    case 'rejected':
      return { text: t('card.rejected'), tone: 'neutral' };
    case 'expired':
      return { text: t('card.expiredNothing'), tone: 'neutral' };
    case 'cancelled':
      return { text: t('card.cancelled'), tone: 'neutral' };
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
 * @param {Translate} [t]
 * @returns {string}
 */
export function formatParam(value, t = english) {
  if (typeof value === 'string') return value;
  if (typeof value === 'number') return value.toLocaleString();
  if (typeof value === 'boolean') return value ? t('value.yes') : t('value.no');
  if (value === null || value === undefined) return '—';
  return plainText(value, undefined);
}
