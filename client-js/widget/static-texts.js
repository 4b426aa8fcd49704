/**
 * The fixed texts of the widget's frame (buttons, labels, placeholders): each element's text or
 * attribute remembers its message id, so a change of language sets them all again.
 *
 * @module static-texts
 */

import { english } from './catalog.js';

/** @typedef {import('./catalog.js').Translate} Translate */

/** The texts set from the catalog, and the lookup they were set with. */
export class StaticTexts {
  /** @type {Translate} */
  t = english;
  /** @type {[Element, string, string][]} element, attribute ('' for its text), message id */
  #entries = [];

  /**
   * Set an element's text (no attributes named) or the named attributes from the catalog, now
   * and whenever the language changes.
   *
   * @template {Element} E
   * @param {E} element
   * @param {string} id
   * @param {...string} attributes
   * @returns {E}
   */
  say(element, id, ...attributes) {
    for (const attribute of attributes.length ? attributes : ['']) {
      const known = this.#entries.find(([e, a]) => e === element && a === attribute);
      if (known) known[2] = id;
      else this.#entries.push([element, attribute, id]);
      this.#apply(element, attribute, id);
    }
    return element;
  }

  /**
   * Speak another language: every text is set again.
   *
   * @param {Translate} t
   */
  retranslate(t) {
    this.t = t;
    for (const [element, attribute, id] of this.#entries) this.#apply(element, attribute, id);
  }

  /**
   * @param {Element} element
   * @param {string} attribute
   * @param {string} id
   */
  #apply(element, attribute, id) {
    if (attribute) element.setAttribute(attribute, this.t(id));
    else element.textContent = this.t(id);
  }
}
