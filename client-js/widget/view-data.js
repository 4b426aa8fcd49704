/**
 * Checking the views of `tool_result.view` and the field lists of `confirm_request.fields`
 * before anything is drawn from them. Pure functions, testable in node.
 *
 * A view that does not have the documented shape is not drawn (the tool line still shows its
 * summary); a field list that does not is ignored and the card falls back to describing the
 * params by their keys. Both say why, so a host's developer can find the mistake.
 *
 * @module view-data
 */

import { english } from './catalog.js';

/** @typedef {import('./catalog.js').Translate} Translate */
/** @typedef {import('../types.js').View} View */
/** @typedef {import('../types.js').ViewColumn} ViewColumn */
/** @typedef {import('../types.js').ConfirmField} ConfirmField */

const VALUE_TYPES = new Set(['text', 'number', 'money', 'date', 'percent']);
const CHART_KINDS = new Set(['bar', 'line', 'pie']);

/**
 * @param {unknown} value
 * @returns {value is Record<string, unknown>}
 */
function isRecord(value) {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * @param {unknown} column
 * @param {string} where
 * @param {Set<string>} types the types allowed here
 * @returns {string | null} what is wrong with a column, or null
 */
function columnProblem(column, where, types) {
  if (!isRecord(column)) return `${where} is not an object`;
  if (typeof column.key !== 'string' || column.key === '') return `${where}.key is missing`;
  if (column.label !== undefined && typeof column.label !== 'string')
    return `${where}.label is not a string`;
  if (column.type !== undefined && !types.has(String(column.type)))
    return `${where}.type ${JSON.stringify(column.type)} is unknown`;
  if (column.currency !== undefined && typeof column.currency !== 'string')
    return `${where}.currency is not a string`;
  return null;
}

/**
 * @param {Record<string, unknown>} view
 * @returns {string | null}
 */
function rowsProblem(view) {
  if (!Array.isArray(view.rows)) return 'rows is not a list';
  const bad = view.rows.findIndex((row) => !isRecord(row));
  if (bad >= 0) return `rows[${bad}] is not an object`;
  if (view.total_rows !== undefined) {
    if (!Number.isInteger(view.total_rows) || /** @type {number} */ (view.total_rows) < 0)
      return 'total_rows is not a count';
  }
  return null;
}

/**
 * What is wrong with a view, or null when it can be drawn.
 *
 * @param {unknown} view
 * @returns {string | null}
 */
export function viewProblem(view) {
  if (!isRecord(view)) return 'the view is not an object';
  if (view.title !== undefined && typeof view.title !== 'string') return 'title is not a string';
  switch (view.kind) {
    case 'table': {
      if (!Array.isArray(view.columns) || view.columns.length === 0) return 'columns is empty';
      for (const [index, column] of view.columns.entries()) {
        const problem = columnProblem(column, `columns[${index}]`, VALUE_TYPES);
        if (problem) return problem;
      }
      return rowsProblem(view);
    }
    case 'chart': {
      if (!CHART_KINDS.has(String(view.chart)))
        return `chart ${JSON.stringify(view.chart)} is not bar, line or pie`;
      if (typeof view.x !== 'string' || view.x === '') return 'x is missing';
      if (!Array.isArray(view.series) || view.series.length === 0) return 'series is empty';
      for (const [index, series] of view.series.entries()) {
        const problem = columnProblem(series, `series[${index}]`, VALUE_TYPES);
        if (problem) return problem;
      }
      return rowsProblem(view);
    }
    case 'metrics': {
      if (!Array.isArray(view.items) || view.items.length === 0) return 'items is empty';
      for (const [index, item] of view.items.entries()) {
        if (!isRecord(item)) return `items[${index}] is not an object`;
        if (typeof item.label !== 'string') return `items[${index}].label is missing`;
        if (!('value' in item)) return `items[${index}].value is missing`;
        if (item.hint !== undefined && typeof item.hint !== 'string')
          return `items[${index}].hint is not a string`;
        if (item.type !== undefined && !VALUE_TYPES.has(String(item.type)))
          return `items[${index}].type ${JSON.stringify(item.type)} is unknown`;
      }
      return null;
    }
    default:
      return `kind ${JSON.stringify(view.kind)} is not table, chart or metrics`;
  }
}

/**
 * The view if it can be drawn, else null (with a console warning saying why).
 *
 * @param {unknown} view
 * @returns {View | null}
 */
export function checkedView(view) {
  if (view === undefined) return null;
  const problem = viewProblem(view);
  if (problem) {
    console.warn(`parley: a tool_result view is not shown: ${problem}`);
    return null;
  }
  return /** @type {View} */ (view);
}

/**
 * "showing N of M" when a view holds fewer rows than the tool found, else null.
 *
 * @param {{rows: unknown[], total_rows?: number}} view
 * @param {(count: number) => string} count formats a count in the locale
 * @param {Translate} [t]
 * @returns {string | null}
 */
export function truncationNote(view, count, t = english) {
  const total = view.total_rows;
  if (total === undefined || total <= view.rows.length) return null;
  return t('view.truncated', { shown: count(view.rows.length), total: count(total) });
}

/**
 * What is wrong with a confirmation's field list, or null when it can label the card.
 *
 * @param {unknown} fields
 * @returns {string | null}
 */
export function fieldsProblem(fields) {
  if (!Array.isArray(fields)) return 'fields is not a list';
  const types = new Set([...VALUE_TYPES, 'list']);
  for (const [index, field] of fields.entries()) {
    const problem = columnProblem(field, `fields[${index}]`, types);
    if (problem) return problem;
    const record = /** @type {Record<string, unknown>} */ (field);
    if (record.columns !== undefined) {
      if (!Array.isArray(record.columns)) return `fields[${index}].columns is not a list`;
      for (const [at, column] of record.columns.entries()) {
        const inner = columnProblem(column, `fields[${index}].columns[${at}]`, VALUE_TYPES);
        if (inner) return inner;
      }
    }
  }
  return null;
}

/**
 * The field list if it can label the card, else null (with a console warning saying why).
 *
 * @param {unknown} fields
 * @returns {ConfirmField[] | null}
 */
export function checkedFields(fields) {
  if (fields === undefined) return null;
  const problem = fieldsProblem(fields);
  if (problem) {
    console.warn(`parley: a confirm_request's fields are not used: ${problem}`);
    return null;
  }
  return /** @type {ConfirmField[]} */ (fields);
}

/**
 * Columns for a list of records that came without any: every key in order of first
 * appearance, numbers right-aligned.
 *
 * @param {Record<string, unknown>[]} rows
 * @returns {ViewColumn[]}
 */
export function columnsOf(rows) {
  /** @type {Map<string, ViewColumn>} */
  const columns = new Map();
  for (const row of rows) {
    for (const [key, value] of Object.entries(row)) {
      if (columns.has(key)) continue;
      columns.set(key, { key, label: '', type: typeof value === 'number' ? 'number' : 'text' });
    }
  }
  return [...columns.values()];
}

/**
 * @param {unknown} value
 * @returns {value is Record<string, unknown>[]} a non-empty list of records
 */
export function isListOfRecords(value) {
  return Array.isArray(value) && value.length > 0 && value.every(isRecord);
}

export { isRecord };
