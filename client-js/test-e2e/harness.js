/**
 * Real parts for the end-to-end tests: `parley serve` as a child process (the scripted dev model
 * in-process, SQLite in a temporary folder), a TCP proxy that can cut live sockets, and demo
 * pages with the widget in headless Chromium.
 *
 * Nothing here stands in for Parley: the page is the demo at `/`, the widget and client are the
 * files the server ships at `/client/`, and every frame comes from the real server.
 */
import { spawn } from 'node:child_process';
import {
  createWriteStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
} from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

import { findChromium, launchChromium } from '../test-support/chromium.js';

export const REPO = fileURLToPath(new URL('../..', import.meta.url));
/** Screenshots go here (git-ignored). */
export const ARTIFACTS = join(REPO, 'test-artifacts', 'e2e');
const STARTUP_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 40_000;
/** Generous: the machine may be busy; no test asserts how fast anything is. */
export const WAIT_MS = 30_000;

// Settings of the parent environment that must not leak into a test server.
const INHERITED_SETTINGS = /^(PARLEY_|OPENAI_)|^(DATABASE_URL|REDIS_URL|PORT)$/;

/** @returns {string | null} the Python that runs Parley: PARLEY_PYTHON or the repo's .venv */
export function findPython() {
  const candidates = [process.env.PARLEY_PYTHON, join(REPO, '.venv', 'bin', 'python')];
  return candidates.find((path) => path && existsSync(path)) ?? null;
}

/** @returns {Promise<number>} a TCP port free on loopback right now */
export function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = /** @type {import('node:net').AddressInfo} */ (probe.address());
      probe.close(() => resolve(address.port));
    });
  });
}

/**
 * `python -m server.cli serve` in dev mode on a loopback port, with its own database and dev
 * secret in a temporary folder. `stop()` and `start()` again keep the port and the database,
 * which is how a restart looks to the browser.
 */
/**
 * What a suite in Chromium against `parley serve` needs from this machine: the browser, the
 * venv's Python, and `skip`, the reason the suite cannot run here (false when it can).
 *
 * @returns {Promise<{chromium: any, python: string | null, skip: string | false}>}
 */
export async function demoRequirements() {
  const chromium = await findChromium();
  const python = findPython();
  const skip =
    'missing' in chromium
      ? chromium.missing
      : python === null
        ? 'no Python for parley serve (create .venv with scripts/test, or set PARLEY_PYTHON)'
        : false;
  return { chromium, python, skip };
}

/**
 * `parley serve` (with the settings in `env`) and headless Chromium for the tests of the
 * suite that calls this: both start in its `before` and stop in its `after`.
 *
 * @param {{python: string, chromium: any, env?: Record<string, string>}} options
 * @returns {{server: ParleyServer, browser: any}} set once the suite's `before` has run
 */
export function serveDemo({ python, chromium, env }) {
  const demo = /** @type {{server: ParleyServer, browser: any}} */ ({});
  before(async () => {
    demo.server = new ParleyServer({ python, env });
    await demo.server.start();
    demo.browser = await launchChromium(chromium);
  });
  after(async () => {
    await demo.browser?.close();
    await demo.server?.dispose();
  });
  return demo;
}

export class ParleyServer {
  /**
   * @param {{python: string, env?: Record<string, string>}} options `env` adds settings
   */
  constructor({ python, env = {} }) {
    this.python = python;
    this.dir = mkdtempSync(join(tmpdir(), 'parley-e2e-'));
    this.logPath = join(this.dir, 'server.log');
    this.extraEnv = env;
    this.port = 0;
    /** @type {import('node:child_process').ChildProcess | null} */
    this.process = null;
  }

  /** @returns {string} the server's origin, e.g. http://127.0.0.1:8123 */
  get origin() {
    return `http://127.0.0.1:${this.port}`;
  }

  /** @returns {Record<string, string>} */
  #env() {
    /** @type {Record<string, string>} */
    const env = {};
    for (const [name, value] of Object.entries(process.env)) {
      if (value !== undefined && !INHERITED_SETTINGS.test(name)) env[name] = value;
    }
    const tiktoken = join(REPO, '..', 'shared', 'tiktoken');
    if (!env.TIKTOKEN_CACHE_DIR && existsSync(tiktoken)) env.TIKTOKEN_CACHE_DIR = tiktoken;
    return {
      ...env,
      PARLEY_DEV: '1',
      PARLEY_HOST: '127.0.0.1',
      PORT: String(this.port),
      DATABASE_URL: `sqlite+aiosqlite:///${join(this.dir, 'parley.db')}`,
      PARLEY_DEV_SECRET_FILE: join(this.dir, 'dev-secret'),
      PARLEY_LOG_FORMAT: 'text',
      PYTHONUNBUFFERED: '1',
      ...this.extraEnv,
    };
  }

  /** Start the process (on the same port as before, if it ran already) and wait for /readyz. */
  async start() {
    if (this.process) throw new Error('the server is already running');
    if (!this.port) this.port = await freePort();
    const log = createWriteStream(this.logPath, { flags: 'a' });
    await new Promise((resolve) => log.once('open', resolve));
    const child = spawn(this.python, ['-m', 'server.cli', 'serve'], {
      cwd: REPO,
      env: this.#env(),
      stdio: ['ignore', log, log],
    });
    this.process = child;
    /** @type {Promise<void>} */
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    child.once('exit', () => {
      log.end();
      if (this.process === child) this.process = null;
    });
    const deadline = Date.now() + STARTUP_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (this.process !== child) {
        throw new Error(`parley serve exited during startup:\n${this.logTail()}`);
      }
      try {
        const response = await fetch(`${this.origin}/readyz`);
        if (response.status === 200) return;
      } catch {
        // Not listening yet.
      }
      await sleep(150);
    }
    await this.stop('SIGKILL');
    throw new Error(`parley serve did not become ready:\n${this.logTail()}`);
  }

  /**
   * Stop the process: SIGTERM lets running turns drain (a deploy's restart), SIGKILL does not.
   *
   * @param {NodeJS.Signals} [signal]
   */
  async stop(signal = 'SIGTERM') {
    const child = this.process;
    if (!child) return;
    child.kill(signal);
    const stopped = await Promise.race([
      this.exited?.then(() => true),
      // Unreferenced, so a timer that lost the race cannot hold the test process open.
      sleep(STOP_TIMEOUT_MS, false, { ref: false }),
    ]);
    if (!stopped) {
      child.kill('SIGKILL');
      await this.exited;
    }
  }

  /** @returns {string} the end of the server's log, for failure messages */
  logTail(chars = 4000) {
    try {
      return readFileSync(this.logPath, 'utf8').slice(-chars);
    } catch {
      return '(no log)';
    }
  }

  /** Stop the server and remove its folder. */
  async dispose() {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * A TCP proxy in front of the server. `cut()` breaks every live connection the way a dropped
 * network does (no close frame: the browser sees 1006), and while `down` new connections are
 * refused, so the page has to keep retrying until `down` is false again.
 */
export class TcpProxy {
  /** @param {number} targetPort */
  constructor(targetPort) {
    this.targetPort = targetPort;
    this.port = 0;
    this.down = false;
    /** @type {Set<import('node:net').Socket>} */
    this.sockets = new Set();
    this.server = createServer((client) => this.#accept(client));
  }

  /** @returns {string} */
  get origin() {
    return `http://127.0.0.1:${this.port}`;
  }

  /** @returns {Promise<void>} */
  start() {
    return new Promise((resolve) => {
      this.server.listen(0, '127.0.0.1', () => {
        this.port = /** @type {import('node:net').AddressInfo} */ (this.server.address()).port;
        resolve();
      });
    });
  }

  /** @param {import('node:net').Socket} client */
  #accept(client) {
    if (this.down) {
      client.resetAndDestroy();
      return;
    }
    const upstream = connect(this.targetPort, '127.0.0.1');
    for (const [from, to] of [
      [client, upstream],
      [upstream, client],
    ]) {
      this.sockets.add(from);
      from.pipe(to);
      from.on('error', () => to.destroy());
      from.on('close', () => {
        this.sockets.delete(from);
        to.destroy();
      });
    }
  }

  /** Break every connection now. */
  cut() {
    for (const socket of this.sockets) socket.resetAndDestroy();
    this.sockets.clear();
  }

  /** @returns {Promise<void>} */
  close() {
    this.cut();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/**
 * @typedef {{user: string, tenant?: string, roles?: string, name?: string, locale?: string}} Identity
 * @typedef {{
 *   typing: boolean, banner: boolean, state: string | undefined, count: number,
 *   status: string | null, text: string | null
 * }} Sample
 */

/**
 * The demo page at `/` with its widget signed in as `identity` and the panel open.
 *
 * The demo picks its user from a menu; the tests give every scenario its own user by rewriting
 * the dev token request, so scenarios sharing a server cannot see each other.
 */
export class DemoTab {
  /**
   * @param {any} page a playwright-core Page
   */
  constructor(page) {
    this.page = page;
    /** @type {string[]} page errors, failed console messages and dialogs the page opened */
    this.problems = [];
    /** @type {string[]} URLs the page requested */
    this.requests = [];
  }

  /**
   * @param {any} context a playwright-core BrowserContext
   * @param {string} origin
   * @param {Identity} identity
   * @returns {Promise<DemoTab>}
   */
  static async open(context, origin, identity) {
    const page = await context.newPage();
    const tab = new DemoTab(page);
    page.on('pageerror', (/** @type {Error} */ error) =>
      tab.problems.push(`error: ${error.message}`),
    );
    page.on('console', (/** @type {any} */ message) => {
      if (message.type() === 'error') tab.problems.push(`console: ${message.text()}`);
    });
    page.on('dialog', (/** @type {any} */ dialog) => {
      tab.problems.push(`dialog: ${dialog.message()}`);
      void dialog.dismiss();
    });
    page.on('request', (/** @type {any} */ request) => tab.requests.push(request.url()));
    await page.route(
      (/** @type {URL} */ url) => url.pathname === '/dev/token',
      (/** @type {any} */ route) => {
        const url = new URL(route.request().url());
        url.searchParams.set('user', identity.user);
        url.searchParams.set('tenant', identity.tenant ?? 'acme');
        url.searchParams.set('roles', identity.roles ?? 'admin');
        url.searchParams.set('name', identity.name ?? identity.user);
        if (identity.locale) url.searchParams.set('locale', identity.locale);
        return route.continue({ url: url.href });
      },
    );
    await page.goto(`${origin}/`);
    await tab.waitConnected();
    await tab.testid('launcher').click();
    await tab.testid('panel').waitFor();
    return tab;
  }

  /**
   * A locator for a test id inside the widget's shadow root.
   *
   * @param {string} id
   * @returns {any}
   */
  testid(id) {
    return this.page.locator(`parley-assistant [data-testid="${id}"]`);
  }

  /** Wait until the widget's client has its `ready`. */
  async waitConnected() {
    await this.page.waitForFunction(
      () =>
        /** @type {any} */ (document.querySelector('parley-assistant'))?.client?.state ===
        'connected',
      undefined,
      { timeout: WAIT_MS },
    );
  }

  /**
   * Type a message and press Enter, as a user does.
   *
   * @param {string} text
   */
  async type(text) {
    await this.testid('input').fill(text);
    await this.testid('input').press('Enter');
  }

  /**
   * Record what the widget shows after every change of its DOM (a MutationObserver on the shadow
   * root sees each render, however short-lived): the typing indicator, the banner, the
   * connection state and the newest assistant message.
   */
  async startRecording() {
    await this.page.evaluate(() => {
      const root = /** @type {ShadowRoot} */ (
        document.querySelector('parley-assistant')?.shadowRoot
      );
      /** @param {string} id */
      const one = (id) => /** @type {HTMLElement} */ (root.querySelector(`[data-testid="${id}"]`));
      /** @type {any[]} */
      const samples = [];
      const sample = () => {
        const answers = root.querySelectorAll('[data-testid="message-assistant"]');
        const last = /** @type {HTMLElement | undefined} */ (answers[answers.length - 1]);
        const entry = {
          typing: !one('typing').hidden,
          banner: !one('banner').hidden,
          state: one('connection-state').dataset.state,
          count: answers.length,
          status: last?.dataset.status ?? null,
          text: last?.querySelector('.bubble')?.textContent ?? null,
        };
        const previous = samples[samples.length - 1];
        if (!previous || JSON.stringify(previous) !== JSON.stringify(entry)) samples.push(entry);
      };
      sample();
      new MutationObserver(sample).observe(root, {
        subtree: true,
        childList: true,
        attributes: true,
        characterData: true,
      });
      /** @type {any} */ (window).parleySamples = samples;
    });
  }

  /** @returns {Promise<Sample[]>} what startRecording() saw so far */
  samples() {
    return this.page.evaluate(() => /** @type {any} */ (window).parleySamples);
  }

  /**
   * Save a screenshot of the widget's panel (or the whole page) under test-artifacts/e2e/.
   *
   * @param {string} name file name without extension
   * @param {{fullPage?: boolean}} [options]
   */
  async screenshot(name, { fullPage = false } = {}) {
    mkdirSync(ARTIFACTS, { recursive: true });
    const path = join(ARTIFACTS, `${name}.png`);
    if (fullPage) await this.page.screenshot({ path, animations: 'disabled' });
    else await this.testid('panel').screenshot({ path, animations: 'disabled' });
    return path;
  }
}

/** @returns {string} a user id no other scenario or run uses */
export function uniqueUser(label = 'user') {
  return `${label}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}
