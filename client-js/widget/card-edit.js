/**
 * Editing an action's parameters on its confirmation card before approving it.
 *
 * The plain values of the params (text, numbers, money, dates, yes/no) become inputs typed from
 * the card's fields (`confirm_request.fields`), or from the proposed value when no field names
 * the key; lists and records stay as shown. The values are checked here too, so a plain mistake
 * is named before anything is sent; the server checks them again against the tool's schema and
 * answers `invalid_params` naming the field. `confirm` carries `params` only when something
 * changed ({@link changedParams}).
 *
 * The checks are pure functions, testable in node; {@link paramForm} builds the inputs.
 *
 * @module card-edit
 */

import { english } from './catalog.js';
import { h } from './dom.js';
import { labelOf } from './format.js';

/** @typedef {import('../types.js').ConfirmField} ConfirmField */
/** @typedef {import('./catalog.js').Translate} Translate */
/** @typedef {'text' | 'number' | 'date' | 'boolean'} InputKind */
/** @typedef {{key: string, label: string, kind: InputKind, value: unknown}} EditableParam */

const NUMERIC_FIELD_TYPES = new Set(['number', 'money', 'percent']);
const ISO_DATE = /^\d{4}-\d{2}-\d{2}$/;
/**
 * Keys that name what the action is about (`po_number`, `customer_id`): changing one would make
 * it a different action, which is a new request in the conversation, not an edit of this one.
 */
const IDENTIFIER = /(^|_)(id|number|no|code)$/i;

/**
 * The params a person may change, in the card's order: the fields' keys first, then the rest;
 * identifiers are left out.
 *
 * @param {Record<string, unknown>} params
 * @param {ConfirmField[] | null} fields
 * @returns {EditableParam[]}
 */
export function editableParams(params, fields) {
  /** @type {EditableParam[]} */
  const editable = [];
  const byKey = new Map((fields ?? []).map((field) => [field.key, field]));
  const keys = [...byKey.keys()].filter((key) => key in params);
  for (const key of Object.keys(params)) if (!byKey.has(key)) keys.push(key);
  for (const key of keys) {
    if (IDENTIFIER.test(key)) continue;
    const field = byKey.get(key);
    const kind = inputKind(params[key], field);
    if (kind) editable.push({ key, label: field?.label || labelOf(key), kind, value: params[key] });
  }
  return editable;
}

/**
 * @param {unknown} value the proposed value
 * @param {ConfirmField | undefined} field
 * @returns {InputKind | null} null for values edited nowhere but in the conversation
 */
function inputKind(value, field) {
  if (value !== null && typeof value === 'object') return null;
  if (typeof value === 'boolean') return 'boolean';
  if (field?.type === 'list') return null;
  if (field && NUMERIC_FIELD_TYPES.has(field.type)) return 'number';
  if (field?.type === 'date' && (typeof value !== 'string' || ISO_DATE.test(value))) return 'date';
  if (typeof value === 'number') return 'number';
  if (typeof value === 'string' || value === null || value === undefined) return 'text';
  return null;
}

/**
 * Read one input's text as the value to send, or say what is wrong with it.
 *
 * A number keeps the form it was proposed in: a decimal string ("12400.00") stays a string, so
 * the host gets money exactly as it sent it.
 *
 * @param {EditableParam} param
 * @param {string | boolean} raw the input's value (a checkbox's `checked`)
 * @param {Translate} [t]
 * @returns {{value: unknown} | {problem: string}}
 */
export function readValue(param, raw, t = english) {
  if (param.kind === 'boolean') return { value: Boolean(raw) };
  const text = String(raw).trim();
  if (text === '') {
    // Emptying a value that was proposed is not an edit the action can run with.
    if (param.value === null || param.value === undefined || param.value === '') {
      return { value: param.value };
    }
    return { problem: t('field.required') };
  }
  if (param.kind === 'number') {
    const normalised = text.replace(/\s/g, '').replace(',', '.');
    const number = Number(normalised);
    if (!/^[+-]?(\d+\.?\d*|\.\d+)$/.test(normalised) || !Number.isFinite(number)) {
      return { problem: t('field.number') };
    }
    return { value: typeof param.value === 'string' ? normalised : number };
  }
  if (param.kind === 'date' && !ISO_DATE.test(text)) return { problem: t('field.date') };
  return { value: text };
}

/**
 * The params to send with an approval: the proposed ones with the edits, or null when nothing
 * changed (then `confirm` goes without `params`).
 *
 * @param {Record<string, unknown>} proposed
 * @param {Record<string, unknown>} edits by key
 * @returns {Record<string, unknown> | null}
 */
export function changedParams(proposed, edits) {
  const changed = Object.entries(edits).some(([key, value]) => !sameValue(proposed[key], value));
  return changed ? { ...proposed, ...edits } : null;
}

/**
 * @param {unknown} a
 * @param {unknown} b
 * @returns {boolean}
 */
function sameValue(a, b) {
  if (a === b) return true;
  // "12400.00" and "12400" are the same amount: not an edit.
  if (typeof a === 'string' && typeof b === 'string') {
    const x = Number(a);
    const y = Number(b);
    return a.trim() !== '' && b.trim() !== '' && Number.isFinite(x) && x === y;
  }
  return false;
}

/** Numbers the inputs, so each label points at its own input however many cards are open. */
let inputCount = 0;

/**
 * The inputs of the editable params, each labelled and marked with its key.
 *
 * @param {EditableParam[]} params
 * @returns {HTMLElement}
 */
export function paramForm(params) {
  const rows = params.map((param) => {
    const id = `parley-param-${++inputCount}`;
    /** @type {Record<string, string>} */
    const attributes = {
      id,
      name: param.key,
      'data-key': param.key,
      'data-testid': `param-input-${param.key}`,
    };
    if (param.kind === 'boolean') attributes.type = 'checkbox';
    else if (param.kind === 'date') attributes.type = 'date';
    else if (param.kind === 'number') {
      // Text with a numeric keyboard: a number input would hide what a person typed wrongly.
      attributes.type = 'text';
      attributes.inputmode = 'decimal';
    } else attributes.type = 'text';
    const input = h('input', attributes);
    if (param.kind === 'boolean') input.checked = param.value === true;
    else input.value = param.value === null || param.value === undefined ? '' : String(param.value);
    return h('div', { class: 'param-edit' }, [h('label', { for: id }, [param.label]), input]);
  });
  return h('div', { class: 'param-form', 'data-testid': 'param-form' }, rows);
}

/**
 * Read a card's inputs: the edits by key, or the first problem with its field's label.
 *
 * @param {HTMLElement} form from {@link paramForm}
 * @param {EditableParam[]} params
 * @param {Translate} [t]
 * @returns {{edits: Record<string, unknown>} | {problem: string, key: string}}
 */
export function readForm(form, params, t = english) {
  /** @type {Record<string, unknown>} */
  const edits = {};
  for (const param of params) {
    const input = /** @type {HTMLInputElement | null} */ (
      form.querySelector(`input[data-key="${CSS.escape(param.key)}"]`)
    );
    if (!input) continue;
    const read = readValue(param, param.kind === 'boolean' ? input.checked : input.value, t);
    if ('problem' in read) return { problem: `${param.label}: ${read.problem}`, key: param.key };
    edits[param.key] = read.value;
  }
  return { edits };
}
