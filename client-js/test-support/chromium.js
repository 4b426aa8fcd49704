/**
 * Finding and launching the Chromium the browser tests drive through playwright-core.
 *
 * Only a browser already on the machine is used (`PARLEY_CHROMIUM`, Debian's /usr/bin/chromium,
 * or one Playwright downloaded earlier): the tests never download one. Each launch gets a fresh
 * temporary profile from Playwright and flags that keep Chromium from talking to anything but
 * the pages under test.
 */
import { existsSync } from 'node:fs';

/** Flags for a quiet, sandbox-less headless Chromium (containers run it as root). */
export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
];

/**
 * @typedef {{chromium: any, executablePath: string | undefined, describe: string}} FoundChromium
 */

/**
 * The Chromium to test with, or null (with the reason in `missing`) when there is none.
 *
 * @returns {Promise<FoundChromium | {missing: string}>}
 */
export async function findChromium() {
  let playwright;
  try {
    playwright = await import('playwright-core');
  } catch {
    return { missing: 'playwright-core is not installed (run npm ci in client-js/)' };
  }
  const candidates = [
    process.env.PARLEY_CHROMIUM,
    '/usr/bin/chromium',
    '/usr/bin/chromium-browser',
  ];
  const found = candidates.find((path) => path && existsSync(path));
  if (found) return { chromium: playwright.chromium, executablePath: found, describe: found };
  try {
    const bundled = playwright.chromium.executablePath();
    if (bundled && existsSync(bundled)) {
      return { chromium: playwright.chromium, executablePath: undefined, describe: bundled };
    }
  } catch {
    // No browser downloaded for Playwright either.
  }
  return {
    missing: 'no Chromium found (apt-get install chromium, or set PARLEY_CHROMIUM to its path)',
  };
}

/**
 * Launch a found Chromium headless with {@link CHROMIUM_FLAGS}.
 *
 * @param {FoundChromium} found
 * @returns {Promise<any>} a playwright-core Browser
 */
export function launchChromium(found) {
  return found.chromium.launch({
    executablePath: found.executablePath,
    headless: true,
    args: CHROMIUM_FLAGS,
  });
}
