import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  compareValues,
  formatDate,
  formatValue,
  labelOf,
  plainText,
  toNumber,
  usableLocale,
} from '../widget/format.js';

test('money in its currency and the locale, decimal strings exact', () => {
  assert.equal(
    formatValue('318979.20', { type: 'money', currency: 'USD' }, 'en-US'),
    '$318,979.20',
  );
  assert.equal(formatValue(1250, { type: 'money', currency: 'EUR' }, 'de-DE'), '1.250,00\u00a0€');
  // More digits than a double holds are kept.
  assert.equal(
    formatValue('12345678901234567.89', { type: 'money', currency: 'USD' }, 'en-US'),
    '$12,345,678,901,234,567.89',
  );
  // An unknown currency code is written after the number instead of failing.
  assert.equal(formatValue('10', { type: 'money', currency: 'XX1' }, 'en-US'), '10.00 XX1');
  assert.equal(formatValue('10', { type: 'money' }, 'en-US'), '10.00');
});

test('numbers, percent, dates, empties and text that is not of its type', () => {
  assert.equal(formatValue(1234567.891, { type: 'number' }, 'en-US'), '1,234,567.89');
  assert.equal(formatValue(0.25, { type: 'percent' }, 'en-US'), '25%');
  assert.equal(formatValue('2026-06-30', { type: 'date' }, 'en-US'), 'Jun 30, 2026');
  assert.equal(formatDate('not a date', 'en-US'), 'not a date');
  assert.equal(formatValue(null, { type: 'number' }, 'en-US'), '—');
  assert.equal(formatValue('n/a', { type: 'money', currency: 'USD' }, 'en-US'), 'n/a');
  assert.equal(formatValue(true, {}, 'en-US'), 'yes');
});

test('nested values read as text, never JSON', () => {
  assert.equal(
    plainText([{ item: 'Widget', unit_price: '50' }], 'en-US'),
    'Item: Widget, Unit price: 50',
  );
  assert.equal(plainText(['a', 'b'], 'en-US'), 'a, b');
});

test('labels from keys', () => {
  assert.equal(labelOf('po_number'), 'PO number');
  assert.equal(labelOf('unitPrice'), 'Unit price');
  assert.equal(labelOf('days_past_due'), 'Days past due');
});

test('sorting: numbers by value, text by collation, empties last', () => {
  const collator = new Intl.Collator('en-US', { numeric: true });
  const values = ['100.5', 9, null, '20'];
  assert.deepEqual(
    [...values].sort((a, b) => compareValues(a, b, 'money', collator)),
    [9, '20', '100.5', null],
  );
  assert.deepEqual(
    ['PO-10', 'PO-9', 'po-1'].sort((a, b) => compareValues(a, b, 'text', collator)),
    ['po-1', 'PO-9', 'PO-10'],
  );
});

test('numbers from JSON numbers and decimal strings only; locales Intl knows', () => {
  assert.equal(toNumber('12.50'), 12.5);
  assert.equal(toNumber('12,50'), null);
  assert.equal(toNumber(Number.NaN), null);
  assert.equal(usableLocale('de-de'), 'de-DE');
  assert.equal(usableLocale('not a locale!'), undefined);
  assert.equal(usableLocale(''), undefined);
});
