/**
 * Values of views and confirmation cards as people read them: numbers, money, percentages and
 * dates formatted with `Intl` in the widget's locale. Pure functions, testable in node.
 *
 * Numbers and money arrive as JSON numbers or as decimal strings ("12400.00"); a decimal string
 * is handed to `Intl.NumberFormat` as a string, which formats it exactly (no float rounding).
 *
 * @module format
 */

/** @typedef {import('../types.js').ValueType} ValueType */

/** @typedef {{type?: ValueType | string, currency?: string}} ValueFormat */

const DECIMAL = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;
const DATE_ONLY = /^(\d{4})-(\d{2})-(\d{2})$/;
const DATE_TIME = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}/;

/** Types whose values are numbers: right-aligned, summed by charts, sorted numerically. */
const NUMERIC_TYPES = new Set(['number', 'money', 'percent']);

/**
 * @param {string | undefined} type
 * @returns {boolean} whether values of this type are numbers
 */
export function isNumericType(type) {
  return type !== undefined && NUMERIC_TYPES.has(type);
}

/**
 * A JSON number or decimal string as a number, or null when it is neither.
 *
 * @param {unknown} value
 * @returns {number | null}
 */
export function toNumber(value) {
  if (typeof value === 'number') return Number.isFinite(value) ? value : null;
  if (typeof value === 'string' && DECIMAL.test(value.trim())) return Number(value.trim());
  return null;
}

/**
 * A locale `Intl` accepts, or undefined (the runtime's default) when `candidate` is not one.
 *
 * @param {string | null | undefined} candidate
 * @returns {string | undefined}
 */
export function usableLocale(candidate) {
  if (!candidate) return undefined;
  try {
    return Intl.getCanonicalLocales(candidate)[0];
  } catch {
    return undefined;
  }
}

/** @type {Map<string, Intl.NumberFormat>} */
const numberFormats = new Map();

/**
 * @param {string | undefined} locale
 * @param {Intl.NumberFormatOptions} options
 * @returns {Intl.NumberFormat}
 */
function numberFormat(locale, options) {
  const key = `${locale ?? ''}|${JSON.stringify(options)}`;
  let format = numberFormats.get(key);
  if (!format) {
    format = new Intl.NumberFormat(locale, options);
    numberFormats.set(key, format);
  }
  return format;
}

/**
 * Format a number given as a number or a decimal string; strings keep their exact digits.
 *
 * @param {Intl.NumberFormat} format
 * @param {number | string} value
 * @returns {string}
 */
function formatNumber(format, value) {
  if (typeof value === 'string') {
    // Engines with Intl.NumberFormat v3 format decimal strings exactly; older ones want a number.
    try {
      return format.format(/** @type {any} */ (value.trim()));
    } catch {
      return format.format(Number(value));
    }
  }
  return format.format(value);
}

/**
 * Money in a currency: `12400` and `USD` → `$12,400.00` in en-US. An unknown currency code is
 * shown after the number instead of making the card fail.
 *
 * @param {number | string} amount
 * @param {string | undefined} currency
 * @param {string | undefined} locale
 * @returns {string}
 */
export function formatMoney(amount, currency, locale) {
  if (currency) {
    try {
      return formatNumber(numberFormat(locale, { style: 'currency', currency }), amount);
    } catch {
      // Not an ISO 4217 code Intl knows.
    }
  }
  const plain = formatNumber(
    numberFormat(locale, { minimumFractionDigits: 2, maximumFractionDigits: 2 }),
    amount,
  );
  return currency ? `${plain} ${currency}` : plain;
}

/**
 * An ISO 8601 date or date-time in the locale; a date without a time stays that calendar day
 * whatever the reader's time zone. Text that is not such a date is returned as it is.
 *
 * @param {string} value
 * @param {string | undefined} locale
 * @returns {string}
 */
export function formatDate(value, locale) {
  const day = DATE_ONLY.exec(value);
  if (day) {
    const date = new Date(Date.UTC(Number(day[1]), Number(day[2]) - 1, Number(day[3])));
    if (Number.isNaN(date.getTime())) return value;
    return new Intl.DateTimeFormat(locale, { dateStyle: 'medium', timeZone: 'UTC' }).format(date);
  }
  if (DATE_TIME.test(value)) {
    const date = new Date(value);
    if (Number.isNaN(date.getTime())) return value;
    return new Intl.DateTimeFormat(locale, { dateStyle: 'medium', timeStyle: 'short' }).format(
      date,
    );
  }
  return value;
}

/**
 * One value as text, by its declared type. Anything that does not fit its type (a word in a
 * money column) is shown as the text it is rather than as a wrong number.
 *
 * @param {unknown} value
 * @param {ValueFormat} format
 * @param {string | undefined} locale
 * @returns {string}
 */
export function formatValue(value, format, locale) {
  if (value === null || value === undefined || value === '') return '—';
  if (typeof value === 'boolean') return value ? 'yes' : 'no';
  const type = format.type ?? 'text';
  if (isNumericType(type)) {
    const number = toNumber(value);
    if (number !== null) {
      const exact = /** @type {number | string} */ (typeof value === 'string' ? value : number);
      if (type === 'money') return formatMoney(exact, format.currency, locale);
      if (type === 'percent') {
        return numberFormat(locale, { style: 'percent', maximumFractionDigits: 1 }).format(number);
      }
      return formatNumber(numberFormat(locale, { maximumFractionDigits: 2 }), exact);
    }
  }
  if (type === 'date' && typeof value === 'string') return formatDate(value, locale);
  if (typeof value === 'number') return formatNumber(numberFormat(locale, {}), value);
  if (typeof value === 'string') return value;
  return plainText(value, locale);
}

/**
 * Nested values in a cell or a line, without JSON punctuation: arrays joined with commas,
 * records as `Label: value` pairs.
 *
 * @param {unknown} value
 * @param {string | undefined} locale
 * @returns {string}
 */
export function plainText(value, locale) {
  if (Array.isArray(value)) return value.map((item) => plainText(item, locale)).join(', ');
  if (value !== null && typeof value === 'object') {
    return Object.entries(value)
      .map(([key, item]) => `${labelOf(key)}: ${plainText(item, locale)}`)
      .join(', ');
  }
  return formatValue(value, {}, locale);
}

/** Words that read better in capitals in a label. */
const ACRONYMS = new Set(['id', 'po', 'so', 'sku', 'vat', 'iban', 'url', 'api', 'crm', 'erp']);

/**
 * A field name as a label: `po_number` → `PO number`, `unitPrice` → `Unit price`.
 *
 * @param {string} key
 * @returns {string}
 */
export function labelOf(key) {
  const words = key
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .replace(/[_-]+/g, ' ')
    .trim()
    .split(/\s+/)
    .map((word, index) => {
      if (ACRONYMS.has(word.toLowerCase())) return word.toUpperCase();
      return index === 0 ? word : word.toLowerCase();
    });
  const text = words.join(' ');
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/**
 * Sort two cell values of one column: numbers numerically, dates and text by the locale's
 * collation; empty cells last.
 *
 * @param {unknown} a
 * @param {unknown} b
 * @param {string | undefined} type
 * @param {Intl.Collator} collator
 * @returns {number}
 */
export function compareValues(a, b, type, collator) {
  const emptyA = a === null || a === undefined || a === '';
  const emptyB = b === null || b === undefined || b === '';
  if (emptyA || emptyB) return Number(emptyA) - Number(emptyB);
  if (isNumericType(type)) {
    const x = toNumber(a);
    const y = toNumber(b);
    if (x !== null && y !== null) return x - y;
  }
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  return collator.compare(String(a), String(b));
}
