/**
 * Profiles (copilots) in the widget: which one a new conversation asks for, the switcher that
 * lets the user choose when `ready.profiles` lists more than one, the profile's title in the
 * header, and the greeting and suggestions of an empty conversation.
 *
 * The choice for a new conversation is, in order: what the user picked in the switcher, the
 * element's `profile` attribute, and otherwise nothing, so the server applies its default
 * profile. The pure functions below make that choice; {@link ProfileChooser} keeps its DOM.
 *
 * @module profiles
 */

import { english } from './catalog.js';
import { h } from './dom.js';

/** @typedef {import('../types.js').ProfileSummary} ProfileSummary */
/** @typedef {import('./catalog.js').Translate} Translate */

/**
 * The profile id the first message of a new conversation carries, or undefined for none.
 *
 * @param {{picked?: string, attribute?: string | null}} choice
 * @returns {string | undefined}
 */
export function chosenProfile({ picked, attribute }) {
  if (picked) return picked;
  return attribute ? attribute : undefined;
}

/**
 * The profile a new conversation will run under, as far as the widget knows: the chosen one
 * when the user may use it, else the server's default.
 *
 * @param {ProfileSummary[]} profiles
 * @param {string | undefined} chosen
 * @returns {ProfileSummary | undefined}
 */
export function expectedProfile(profiles, chosen) {
  if (chosen !== undefined) return profiles.find((p) => p.id === chosen);
  return profiles.find((p) => p.default === true) ?? profiles[0];
}

/**
 * A profile's title, or its id when the user's list does not hold it (a conversation whose
 * profile the user may no longer start, or one the page named by mistake).
 *
 * @param {ProfileSummary[]} profiles
 * @param {string | undefined} id
 * @returns {string | undefined}
 */
export function profileTitle(profiles, id) {
  if (id === undefined) return undefined;
  return profiles.find((p) => p.id === id)?.title ?? id;
}

/**
 * What an empty conversation shows: the profile's greeting and suggestions, or the widget's
 * own (the `suggestions` attribute) when the profile has none.
 *
 * @param {ProfileSummary | undefined} profile
 * @param {string[]} fallbackSuggestions
 * @param {Translate} [t]
 * @returns {{greeting: string, description?: string, suggestions: string[]}}
 */
export function emptyState(profile, fallbackSuggestions, t = english) {
  const suggestions = profile?.suggestions?.length ? profile.suggestions : fallbackSuggestions;
  /** @type {{greeting: string, description?: string, suggestions: string[]}} */
  const state = { greeting: profile?.greeting || t('profile.greeting'), suggestions };
  if (profile?.description && !profile.greeting) state.description = profile.description;
  return state;
}

/**
 * @typedef {object} ProfileView what the chooser shows on one render
 * @property {ProfileSummary[]} profiles from `ready.profiles`
 * @property {string | null} attribute the element's `profile` attribute
 * @property {string[]} fallbackSuggestions the element's `suggestions` attribute
 * @property {boolean} isNew a new conversation is on screen
 * @property {string | undefined} conversationProfile the profile of the conversation on screen
 * @property {string} heading the panel's heading, so the label does not repeat it
 * @property {Translate} t the widget's language
 */

/** The switcher, the header label and the empty state of the widget. */
export class ProfileChooser {
  /** @type {string | undefined} what the user picked in the switcher */
  #picked = undefined;
  /** @type {string | null} */
  #attribute = null;
  /** the last state rendered, to skip renders that change nothing */
  #signature = '';
  #onSuggestion;

  /** the switcher: a labelled select, shown above the log for a new conversation */
  bar = h('div', { class: 'profile-bar', 'data-testid': 'profile-bar' });
  select = h('select', { id: 'parley-profile', 'data-testid': 'profile-select' });
  /** the header line naming the conversation's profile */
  label = h('span', { class: 'profile-label', 'data-testid': 'profile-label' });
  /** the content of the empty state */
  empty = h('div', { class: 'empty', 'data-testid': 'empty' });
  #switcherLabel = h('label', { for: 'parley-profile' });

  /** @param {{onSuggestion: (text: string) => void, onPick: () => void}} handlers */
  constructor({ onSuggestion, onPick }) {
    this.#onSuggestion = onSuggestion;
    this.bar.append(this.#switcherLabel, this.select);
    this.bar.hidden = true;
    this.label.hidden = true;
    this.select.addEventListener('change', () => {
      this.#picked = this.select.value || undefined;
      onPick();
    });
  }

  /** @returns {string | undefined} the profile the next new conversation asks for */
  get chosen() {
    return chosenProfile({ picked: this.#picked, attribute: this.#attribute });
  }

  /** Forget the user's pick (a different server or user). */
  reset() {
    this.#picked = undefined;
    this.#signature = '';
  }

  /** @param {ProfileView} view */
  update(view) {
    this.#attribute = view.attribute;
    const signature = JSON.stringify([view, this.#picked, view.t('profile.switcher')]);
    if (signature === this.#signature) return;
    this.#signature = signature;
    this.#switcherLabel.textContent = view.t('profile.switcher');
    const { profiles } = view;
    const chosen = this.chosen;
    const expected = expectedProfile(profiles, chosen);

    // The switcher: the profiles the user may start, plus the page's own pick when the list
    // lacks it, so the select always shows what will be sent.
    this.bar.hidden = !view.isNew || profiles.length < 2;
    if (!this.bar.hidden) {
      const options = profiles.map((profile) => {
        const option = h('option', { value: profile.id }, [profile.title]);
        if (profile.description) option.title = profile.description;
        return option;
      });
      if (chosen !== undefined && !profiles.some((p) => p.id === chosen)) {
        options.push(h('option', { value: chosen }, [chosen]));
      }
      this.select.replaceChildren(...options);
      this.select.value = chosen ?? expected?.id ?? '';
    }

    // The header: the conversation's profile, or for a new one the profile it will get.
    const title = view.isNew
      ? (profileTitle(profiles, chosen) ?? expected?.title)
      : profileTitle(profiles, view.conversationProfile);
    this.label.textContent = title ?? '';
    this.label.hidden = !title || (profiles.length < 2 && title === view.heading);

    const state = emptyState(view.isNew ? expected : undefined, view.fallbackSuggestions, view.t);
    const buttons = state.suggestions.map((text) => {
      const button = h(
        'button',
        { class: 'suggestion', type: 'button', 'data-testid': 'suggestion' },
        [text],
      );
      button.addEventListener('click', () => this.#onSuggestion(text));
      return button;
    });
    this.empty.replaceChildren(
      h('p', { class: 'greeting', 'data-testid': 'greeting' }, [state.greeting]),
      ...(state.description ? [h('p', { class: 'description' }, [state.description])] : []),
      h('div', { class: 'suggestions' }, buttons),
    );
  }
}
