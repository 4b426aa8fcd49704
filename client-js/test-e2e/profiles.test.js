/**
 * Profiles against a real `parley serve` with the demo ERP's profiles file: the switcher lists
 * what `ready.profiles` says, the first message binds the conversation to the chosen profile,
 * and a hand-off by the scripted dev model shows its note in two tabs of the user, and in a tab
 * opened afterwards, which has only the `ready` snapshot to show it from.
 *
 * Run: cd client-js && node --test test-e2e/   (skipped when Chromium or the venv is missing)
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';

import { DemoTab, REPO, WAIT_MS, demoRequirements, serveDemo, uniqueUser } from './harness.js';

const { chromium, python, skip } = await demoRequirements();

describe('profiles against parley serve', { skip }, () => {
  const demo = serveDemo({
    python: /** @type {string} */ (python),
    chromium,
    env: { PARLEY_PROFILES: join(REPO, 'examples', 'erp', 'profiles.toml') },
  });

  test('a conversation started with the sales copilot is handed to finance in both tabs', async () => {
    const context = await demo.browser.newContext({ viewport: { width: 1280, height: 800 } });
    const user = uniqueUser('copilots');
    const writer = await DemoTab.open(context, demo.server.origin, { user });
    const watcher = await DemoTab.open(context, demo.server.origin, { user });

    const select = writer.page.getByRole('combobox', { name: 'New conversation with' });
    await select.waitFor({ timeout: WAIT_MS });
    assert.deepEqual(await select.locator('option').allTextContents(), [
      'Finance copilot',
      'Sales copilot',
    ]);
    assert.equal(await select.inputValue(), 'finance');
    await select.selectOption('sales');
    await writer.testid('greeting').filter({ hasText: 'sales orders' }).waitFor();

    await writer.type('hand me over to finance');
    const note = 'Handed over from Sales copilot to Finance copilot: the user asked for finance';
    for (const tab of [writer, watcher]) {
      await tab.testid('note').filter({ hasText: note }).waitFor({ timeout: WAIT_MS });
      await tab.testid('profile-label').filter({ hasText: 'Finance copilot' }).waitFor();
    }
    await writer.screenshot('profiles-handoff');
    // The note was stored before any tab saw it, so a tab opened now rebuilds it.
    const later = await DemoTab.open(context, demo.server.origin, { user });
    await later.testid('note').filter({ hasText: note }).waitFor({ timeout: WAIT_MS });
    assert.equal(await later.testid('note').count(), 1);
    await later.testid('profile-label').filter({ hasText: 'Finance copilot' }).waitFor();
    assert.deepEqual([...writer.problems, ...watcher.problems, ...later.problems], []);
    await context.close();
  });
});
