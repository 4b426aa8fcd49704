/**
 * Which profile a new conversation asks for and what its empty state shows (widget/profiles.js).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { english } from '../widget/catalog.js';
import {
  chosenProfile,
  emptyState,
  expectedProfile,
  profileTitle,
} from '../widget/profiles.js';

const DEFAULT_GREETING = english('profile.greeting');

const PROFILES = [
  { id: 'finance', title: 'Finance copilot', default: true, description: 'Cash and invoices' },
  { id: 'sales', title: 'Sales copilot', greeting: 'Which deal?', suggestions: ['Open deals'] },
];

test('the pick wins over the page attribute; neither sends nothing', () => {
  assert.equal(chosenProfile({ picked: 'sales', attribute: 'finance' }), 'sales');
  assert.equal(chosenProfile({ attribute: 'finance' }), 'finance');
  assert.equal(chosenProfile({ attribute: '' }), undefined);
  assert.equal(chosenProfile({ attribute: null }), undefined);
});

test('a new conversation expects the chosen profile, else the default', () => {
  assert.equal(expectedProfile(PROFILES, 'sales')?.id, 'sales');
  assert.equal(expectedProfile(PROFILES, undefined)?.id, 'finance');
  assert.equal(expectedProfile(PROFILES, 'ops'), undefined, 'a profile the user may not use');
  assert.equal(expectedProfile([], undefined), undefined);
});

test('titles by id, the id when the list lacks it', () => {
  assert.equal(profileTitle(PROFILES, 'sales'), 'Sales copilot');
  assert.equal(profileTitle(PROFILES, 'ops'), 'ops');
  assert.equal(profileTitle(PROFILES, undefined), undefined);
});

test("the empty state shows the profile's greeting and suggestions, else the widget's", () => {
  assert.deepEqual(emptyState(PROFILES[1], ['x']), {
    greeting: 'Which deal?',
    suggestions: ['Open deals'],
  });
  assert.deepEqual(emptyState(PROFILES[0], ['x']), {
    greeting: DEFAULT_GREETING,
    description: 'Cash and invoices',
    suggestions: ['x'],
  });
  assert.deepEqual(emptyState(undefined, []), { greeting: DEFAULT_GREETING, suggestions: [] });
});
