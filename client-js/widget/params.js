/**
 * The parameters of an action on its confirmation card, as a person reads them: labels, money
 * and dates formatted, lists of records (order lines, allocations) as a small table, nested
 * records as label/value lines. Never JSON.
 *
 * With `confirm_request.fields` the labels, order and types are the tool's; params the fields do
 * not name are still shown after them (a card never hides what will be sent). Without fields the
 * keys are turned into labels and the values shown by what they are.
 *
 * @module params
 */

import { formatValue, labelOf } from './format.js';
import { columnsOf, isListOfRecords, isRecord } from './view-data.js';
import { dataTable } from './views.js';

/** @typedef {import('../types.js').ConfirmField} ConfirmField */

/** Keys whose numbers are identifiers, shown without thousands separators. */
const IDENTIFIER = /(^|_)(id|number|no|code)$/i;
/** @typedef {import('../types.js').ViewColumn} ViewColumn */

/**
 * A `<dl>` of the params.
 *
 * @param {Record<string, unknown>} params
 * @param {ConfirmField[] | null} fields
 * @param {string | undefined} locale
 * @returns {HTMLDListElement}
 */
export function paramList(params, fields, locale) {
  const list = document.createElement('dl');
  list.className = 'params';
  const named = new Set();
  for (const field of fields ?? []) {
    if (!(field.key in params)) continue;
    named.add(field.key);
    list.append(...entry(field.label || labelOf(field.key), params[field.key], field, locale));
  }
  for (const [key, value] of Object.entries(params)) {
    if (named.has(key)) continue;
    // An identifier is a name, not an amount: customer 1207, not customer 1,207.
    const shown = typeof value === 'number' && IDENTIFIER.test(key) ? String(value) : value;
    list.append(...entry(labelOf(key), shown, undefined, locale));
  }
  return list;
}

/**
 * @param {string} label
 * @param {unknown} value
 * @param {ConfirmField | undefined} field
 * @param {string | undefined} locale
 * @returns {HTMLElement[]} a dt and its dd
 */
function entry(label, value, field, locale) {
  const dt = document.createElement('dt');
  dt.textContent = label;
  const dd = document.createElement('dd');
  dd.append(valueNode(value, field, locale));
  if (dd.firstElementChild?.tagName === 'TABLE' || dd.firstElementChild?.tagName === 'DL') {
    // A table or nested list needs the card's full width: it goes under its label.
    dt.classList.add('wide');
    dd.classList.add('wide');
  }
  return [dt, dd];
}

/**
 * @param {unknown} value
 * @param {ConfirmField | undefined} field
 * @param {string | undefined} locale
 * @returns {Node}
 */
function valueNode(value, field, locale) {
  if (isListOfRecords(value)) {
    const columns = field?.columns?.length ? field.columns : labelled(columnsOf(value));
    const table = dataTable(columns, value, locale, false);
    table.setAttribute('data-testid', 'param-table');
    return table;
  }
  if (isRecord(value)) {
    const nested = paramList(value, null, locale);
    nested.classList.add('nested');
    return nested;
  }
  if (Array.isArray(value)) {
    return document.createTextNode(
      value.map((item) => formatValue(item, field ?? {}, locale)).join(', ') || '—',
    );
  }
  return document.createTextNode(formatValue(value, field ?? {}, locale));
}

/**
 * @param {ViewColumn[]} columns
 * @returns {ViewColumn[]}
 */
function labelled(columns) {
  return columns.map((column) => ({ ...column, label: column.label || labelOf(column.key) }));
}
