/**
 * Bar, line and pie charts of chart views, drawn by Chart.js on a canvas.
 *
 * Only the controllers, elements and plugins these three charts need are registered, so the
 * bundle carries no more of Chart.js than that. Animation is off: a chart in a transcript is
 * read, not watched, and a still chart is the same in every tab and every screenshot.
 *
 * @module chart
 */

import {
  ArcElement,
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  PieController,
  PointElement,
  Tooltip,
} from 'chart.js';

import { formatValue, toNumber } from './format.js';

/** @typedef {import('../types.js').ChartView} ChartView */

Chart.register(
  ArcElement,
  BarController,
  BarElement,
  CategoryScale,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  PieController,
  PointElement,
  Tooltip,
);

/** Distinguishable colours (colour-blind safe, after Okabe and Ito), the accent first. */
const PALETTE = ['#2457d6', '#e69f00', '#009e73', '#cc79a7', '#56b4e9', '#d55e00', '#7a7a7a'];

/**
 * @param {number} index
 * @returns {string}
 */
export function colour(index) {
  return PALETTE[index % PALETTE.length];
}

/**
 * Draw `view` on `canvas`; returns the Chart, whose `destroy()` frees it.
 *
 * @param {HTMLCanvasElement} canvas
 * @param {ChartView} view
 * @param {string | undefined} locale
 * @returns {{destroy(): void}}
 */
export function drawChart(canvas, view, locale) {
  const labels = view.rows.map((row) => formatValue(row[view.x], {}, locale));
  const pie = view.chart === 'pie';
  // A pie shows one series; its slices take the palette's colours.
  const series = pie ? view.series.slice(0, 1) : view.series;
  const datasets = series.map((column, index) => ({
    label: column.label || column.key,
    data: view.rows.map((row) => toNumber(row[column.key])),
    backgroundColor: pie ? view.rows.map((_row, at) => colour(at)) : colour(index),
    borderColor: pie ? '#ffffff' : colour(index),
    borderWidth: pie ? 1 : 2,
  }));
  const first = series[0];
  const valueFormat = { type: first.type ?? 'number', currency: first.currency };
  return new Chart(canvas, {
    type: view.chart,
    data: { labels, datasets },
    options: {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      locale,
      plugins: {
        legend: { display: pie || series.length > 1 || Boolean(first.label), position: 'bottom' },
        tooltip: {
          callbacks: {
            label: (context) => {
              const column = series[context.datasetIndex];
              const raw = view.rows[context.dataIndex]?.[column.key];
              const text = formatValue(
                raw,
                { type: column.type ?? 'number', currency: column.currency },
                locale,
              );
              return `${column.label || column.key}: ${text}`;
            },
          },
        },
      },
      scales: pie
        ? {}
        : {
            y: {
              beginAtZero: true,
              ticks: { callback: (value) => formatValue(value, valueFormat, locale) },
            },
          },
    },
  });
}
