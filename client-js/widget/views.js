/**
 * The DOM of a tool result's view: a sortable table, a chart with a data table for screen
 * readers, or KPI cards; plus the "showing N of M" note and the CSV download button.
 *
 * Every value is put into the page as text (`textContent`), never as HTML.
 *
 * @module views
 */

import { drawChart } from './chart.js';
import { english } from './catalog.js';
import { h } from './dom.js';
import { compareValues, formatValue, isNumericType } from './format.js';
import { truncationNote } from './view-data.js';

/** @typedef {import('../types.js').View} View */
/** @typedef {import('../types.js').TableView} TableView */
/** @typedef {import('../types.js').ChartView} ChartView */
/** @typedef {import('../types.js').MetricsView} MetricsView */
/** @typedef {import('../types.js').ViewColumn} ViewColumn */
/** @typedef {import('./catalog.js').Translate} Translate */

/**
 * @typedef {object} DrawnView
 * @property {HTMLElement} node
 * @property {() => void} dispose frees what the view holds (a chart's canvas and observers)
 */

/**
 * @param {View} view
 * @param {{locale?: string, exportPath?: string, t?: Translate}} options `exportPath` adds the
 *   download button (its click is handled by the widget, which holds the token)
 * @returns {DrawnView}
 */
export function drawView(view, { locale, exportPath, t = english }) {
  const figure = h('figure', {
    class: `view view-${view.kind}`,
    'data-testid': 'view',
    'data-kind': view.kind,
  });
  const label = view.title ?? '';
  if (label) figure.append(h('figcaption', {}, [label]));
  let dispose = () => {};
  if (view.kind === 'table') {
    figure.append(tableBox(view, locale, t));
  } else if (view.kind === 'metrics') {
    figure.append(metricCards(view, locale));
  } else {
    const canvas = h('canvas', {
      role: 'img',
      'aria-label': chartDescription(view, t),
      'data-testid': 'chart',
    });
    const box = h('div', { class: 'chart-box', 'data-chart': view.chart }, [canvas]);
    // The same numbers as a table, for screen readers (the canvas is a picture to them).
    const fallback = h('div', { class: 'visually-hidden', 'data-testid': 'chart-data' }, [
      dataTable(chartColumns(view), view.rows, locale, false),
    ]);
    figure.append(box, fallback);
    /** @type {{destroy(): void} | null} */
    let chart = null;
    // Chart.js measures its box: draw once the figure is in the document.
    requestAnimationFrame(() => {
      if (figure.isConnected) chart = drawChart(canvas, view, locale);
    });
    dispose = () => chart?.destroy();
  }
  const footer = h('div', { class: 'view-footer' });
  if (view.kind !== 'metrics') {
    const note = truncationNote(
      view,
      (count) => formatValue(count, { type: 'number' }, locale),
      t,
    );
    if (note) footer.append(h('span', { 'data-testid': 'view-note' }, [note]));
  }
  if (exportPath) {
    footer.append(
      h(
        'button',
        {
          class: 'link-button',
          type: 'button',
          'data-action': 'export',
          'data-id': exportPath,
          'data-testid': 'export',
        },
        [t('view.download')],
      ),
    );
  }
  if (footer.childElementCount > 0) figure.append(footer);
  return { node: figure, dispose };
}

/**
 * @param {ChartView} view
 * @param {Translate} t
 * @returns {string}
 */
function chartDescription(view, t) {
  return t('chart.description', {
    kind: t(`chart.${view.chart}`),
    title: view.title ? `${view.title}: ` : '',
    series: view.series.map((column) => column.label || column.key).join(', '),
    x: view.x.replace(/_/g, ' '),
    count: view.rows.length,
  });
}

/**
 * @param {ChartView} view
 * @returns {ViewColumn[]}
 */
function chartColumns(view) {
  return [
    { key: view.x, label: view.x.replace(/_/g, ' '), type: 'text' },
    ...view.series.map((column) => ({ ...column, type: column.type ?? 'number' })),
  ];
}

/**
 * @param {TableView} view
 * @param {string | undefined} locale
 * @param {Translate} t
 * @returns {HTMLElement}
 */
function tableBox(view, locale, t) {
  return h(
    'div',
    { class: 'table-box', tabindex: '0', role: 'region', 'aria-label': view.title ?? t('view.table') },
    [dataTable(view.columns, view.rows, locale, true)],
  );
}

/**
 * A table of `rows`; with `sortable`, each header is a button that sorts by its column.
 *
 * @param {ViewColumn[]} columns
 * @param {Record<string, unknown>[]} rows
 * @param {string | undefined} locale
 * @param {boolean} sortable
 * @returns {HTMLTableElement}
 */
export function dataTable(columns, rows, locale, sortable) {
  const headRow = h('tr');
  const body = h('tbody');
  const table = h('table', { class: 'data' }, [h('thead', {}, [headRow]), body]);
  const collator = new Intl.Collator(locale, { numeric: true, sensitivity: 'base' });
  /** @param {Record<string, unknown>[]} ordered */
  const fill = (ordered) => {
    body.replaceChildren(
      ...ordered.map((row) =>
        h(
          'tr',
          {},
          columns.map((column) =>
            h('td', isNumericType(column.type) ? { class: 'num' } : {}, [
              formatValue(row[column.key], column, locale),
            ]),
          ),
        ),
      ),
    );
  };
  columns.forEach((column, index) => {
    const text = column.label || column.key;
    const attributes = { scope: 'col', ...(isNumericType(column.type) ? { class: 'num' } : {}) };
    if (!sortable) {
      headRow.append(h('th', attributes, [text]));
      return;
    }
    const button = h('button', { type: 'button', 'data-testid': 'sort' }, [text]);
    const th = h('th', { ...attributes, 'aria-sort': 'none' }, [button]);
    button.addEventListener('click', () => {
      const ascending = th.getAttribute('aria-sort') !== 'ascending';
      for (const other of headRow.children) other.setAttribute('aria-sort', 'none');
      th.setAttribute('aria-sort', ascending ? 'ascending' : 'descending');
      const sign = ascending ? 1 : -1;
      const key = columns[index].key;
      fill(
        [...rows].sort(
          (a, b) => sign * compareValues(a[key], b[key], columns[index].type, collator),
        ),
      );
    });
    headRow.append(th);
  });
  fill(rows);
  return table;
}

/**
 * @param {MetricsView} view
 * @param {string | undefined} locale
 * @returns {HTMLElement}
 */
function metricCards(view, locale) {
  return h(
    'dl',
    { class: 'metrics' },
    view.items.map((item) =>
      h('div', { class: 'metric', 'data-testid': 'metric' }, [
        h('dt', {}, [item.label]),
        h('dd', { class: 'value' }, [
          formatValue(item.value, { type: item.type ?? 'number', currency: item.currency }, locale),
        ]),
        ...(item.hint ? [h('dd', { class: 'hint' }, [item.hint])] : []),
      ]),
    ),
  );
}
