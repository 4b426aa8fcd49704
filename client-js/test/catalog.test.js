import assert from 'node:assert/strict';
import { test } from 'node:test';

import { changedParams, editableParams, readValue } from '../widget/card-edit.js';
import { CATALOGS, english, pickLanguage, translator } from '../widget/catalog.js';
import { formatDate, formatValue } from '../widget/format.js';
import {
  actionTitle,
  closeSentence,
  confirmationResult,
  errorSentence,
  messageErrorSentence,
  toolLine,
} from '../widget/wording.js';

const german = translator('de');

/** @param {string} text */
const placeholders = (text) => [...text.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();

test('every message has an English and a German text with the same placeholders', () => {
  assert.deepEqual(Object.keys(CATALOGS.de).sort(), Object.keys(CATALOGS.en).sort());
  for (const [id, text] of Object.entries(CATALOGS.en)) {
    const translated = CATALOGS.de[id];
    assert.ok(translated.trim(), `${id} has a German text`);
    assert.deepEqual(placeholders(translated), placeholders(text), `placeholders of ${id}`);
  }
});

test('the language: the first candidate with a catalog, else English', () => {
  assert.equal(pickLanguage('de'), 'de');
  assert.equal(pickLanguage('de-DE'), 'de');
  assert.equal(pickLanguage('DE_at'), 'de');
  assert.equal(pickLanguage(null, 'de-CH'), 'de');
  assert.equal(pickLanguage('en-GB', 'de-DE'), 'en');
  assert.equal(pickLanguage('fr-FR', 'de-DE'), 'de');
  assert.equal(pickLanguage('fr-FR'), 'en');
  assert.equal(pickLanguage(undefined, ''), 'en');
  assert.equal(pickLanguage(), 'en');
});

test('a lookup fills placeholders, falls back to English, and shows an unknown id', () => {
  assert.equal(german('card.expiresIn', { time: '4:59' }), 'Läuft ab in 4:59');
  assert.equal(english('card.expiresIn', { time: '4:59' }), 'Expires in 4:59');
  assert.equal(german('no.such.message'), 'no.such.message');
  // A placeholder without a value stays visible rather than reading "undefined".
  assert.equal(english('card.expiresIn'), 'Expires in {time}');
  assert.equal(english('card.expiresIn', {}), 'Expires in {time}');
});

test('the wording functions speak German when given the German lookup', () => {
  const error = { type: 'error', code: 'rate_limited', message: 'x', retryable: true };
  assert.equal(
    errorSentence(/** @type {any} */ (error), german),
    'Sie senden schneller als erlaubt. Bitte warten Sie einen Moment.',
  );
  assert.equal(
    errorSentence(/** @type {any} */ ({ ...error, code: 'brand_new' }), german),
    'Etwas ist schiefgelaufen. Bitte versuchen Sie es erneut.',
  );
  assert.equal(
    messageErrorSentence(
      /** @type {any} */ ({ ...error, code: 'profile_not_found' }),
      { profileTitle: 'Einkauf' },
      german,
    ),
    'Der Assistent „Einkauf“ ist nicht verfügbar. Wählen Sie einen anderen und senden Sie erneut.',
  );
  assert.equal(closeSentence(4403, german), 'Diese Website darf den Assistenten nicht nutzen.');
  assert.equal(closeSentence(4999, german), 'Der Assistent ist gerade nicht verfügbar.');
  assert.equal(actionTitle('erp__approve_po', 'erp', german), 'Bestätigen: approve po');
  assert.equal(
    toolLine(
      /** @type {any} */ ({ name: 'list_orders', status: 'failed', summary: 'timeout' }),
      german,
    ),
    'List orders fehlgeschlagen: timeout',
  );
  assert.deepEqual(confirmationResult(/** @type {any} */ ({ status: 'rejected' }), german), {
    text: 'Abgelehnt. Es wurde nichts getan.',
    tone: 'neutral',
  });
});

test('numbers, money and dates in the German locale', () => {
  assert.equal(
    formatValue('12400.50', { type: 'money', currency: 'EUR' }, 'de-DE'),
    '12.400,50\u00a0€',
  );
  assert.equal(formatValue(1234567.5, { type: 'number' }, 'de-DE'), '1.234.567,5');
  assert.equal(formatDate('2026-03-01', 'de-DE'), '01.03.2026');
});

test('the editable params of a card are its plain values, typed by their fields', () => {
  const params = {
    order_number: 'SO-1',
    customer: 'Acme',
    quantity: 100,
    unit_price: '12400.50',
    rush: false,
    due: '2026-03-01',
    lines: [{ sku: 'W-1', quantity: 2 }],
    address: { city: 'Berlin' },
  };
  const fields = [
    { key: 'unit_price', label: 'Unit price', type: 'money', currency: 'EUR' },
    { key: 'due', label: 'Due', type: 'date' },
    { key: 'lines', label: 'Lines', type: 'list' },
  ];
  const editable = editableParams(params, /** @type {any} */ (fields));
  assert.deepEqual(
    editable.map((p) => [p.key, p.label, p.kind]),
    [
      ['unit_price', 'Unit price', 'number'],
      ['due', 'Due', 'date'],
      ['customer', 'Customer', 'text'],
      ['quantity', 'Quantity', 'number'],
      ['rush', 'Rush', 'boolean'],
    ],
  );
});

test('an input is read as the value to send, or named as wrong', () => {
  const quantity = { key: 'quantity', label: 'Quantity', kind: 'number', value: 100 };
  const price = { key: 'unit_price', label: 'Unit price', kind: 'number', value: '50.00' };
  const note = { key: 'note', label: 'Note', kind: 'text', value: '' };
  const due = { key: 'due', label: 'Due', kind: 'date', value: '2026-03-01' };
  const rush = { key: 'rush', label: 'Rush', kind: 'boolean', value: false };
  assert.deepEqual(readValue(/** @type {any} */ (quantity), ' 120 '), { value: 120 });
  assert.deepEqual(readValue(/** @type {any} */ (quantity), '12,5'), { value: 12.5 });
  assert.deepEqual(readValue(/** @type {any} */ (quantity), 'lots'), {
    problem: 'must be a number',
  });
  assert.deepEqual(readValue(/** @type {any} */ (quantity), '1e400'), {
    problem: 'must be a number',
  });
  assert.deepEqual(readValue(/** @type {any} */ (quantity), '', german), {
    problem: 'ist erforderlich',
  });
  // Money proposed as a decimal string goes back as one: exact, as the host sent it.
  assert.deepEqual(readValue(/** @type {any} */ (price), '49.90'), { value: '49.90' });
  assert.deepEqual(readValue(/** @type {any} */ (note), ''), { value: '' });
  assert.deepEqual(readValue(/** @type {any} */ (due), '2026-04-01'), { value: '2026-04-01' });
  assert.deepEqual(readValue(/** @type {any} */ (due), '1.4.2026'), { problem: 'must be a date' });
  assert.deepEqual(readValue(/** @type {any} */ (rush), true), { value: true });
});

test('params go with an approval only when a value changed', () => {
  const proposed = { customer: 'Acme', quantity: 100, unit_price: '50.00' };
  assert.equal(changedParams(proposed, { quantity: 100, unit_price: '50.00' }), null);
  assert.equal(changedParams(proposed, { unit_price: '50' }), null);
  assert.deepEqual(changedParams(proposed, { quantity: 120 }), {
    customer: 'Acme',
    quantity: 120,
    unit_price: '50.00',
  });
  assert.deepEqual(changedParams(proposed, { customer: 'Globex' }), {
    customer: 'Globex',
    quantity: 100,
    unit_price: '50.00',
  });
});
