/**
 * The web server of the widget's browser tests: the client's files under `/client/`, the fake
 * server's script at `/fake-server.js`, and the routes a suite adds of its own (its test pages,
 * a token route, stand-ins for the REST routes it uses).
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { extname, join, normalize } from 'node:path';
import { after, before } from 'node:test';
import { fileURLToPath } from 'node:url';

import { launchChromium } from '../test-support/chromium.js';

const CLIENT_DIR = fileURLToPath(new URL('..', import.meta.url));

/** @type {Record<string, string>} */
const TYPES = {
  '.js': 'text/javascript',
  '.css': 'text/css',
  '.html': 'text/html',
  '.json': 'application/json',
};

/** @typedef {(status: number, type: string, body: string | Buffer) => void} Send */

/**
 * @typedef {(
 *   request: import('node:http').IncomingMessage,
 *   url: URL,
 *   send: Send,
 * ) => unknown} Routes a suite's own routes: answer a request with `send`, or leave it
 */

/**
 * Start the server on a free loopback port.
 *
 * @param {Routes} routes tried first for every request
 * @returns {Promise<import('node:http').Server>}
 */
export function startPageServer(routes) {
  const server = createServer(async (request, response) => {
    const url = new URL(request.url ?? '/', 'http://localhost');
    let answered = false;
    /** @type {Send} */
    const send = (status, type, body) => {
      answered = true;
      response.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
      response.end(body);
    };
    await routes(request, url, send);
    if (answered) return;
    if (url.pathname === '/fake-server.js') {
      const file = join(CLIENT_DIR, 'test-browser', 'fake-server.js');
      return send(200, 'text/javascript', await readFile(file));
    }
    if (url.pathname.startsWith('/client/')) {
      const file = normalize(join(CLIENT_DIR, url.pathname.slice('/client/'.length)));
      if (file.startsWith(CLIENT_DIR) && existsSync(file)) {
        return send(200, TYPES[extname(file)] ?? 'application/octet-stream', await readFile(file));
      }
    }
    send(404, 'text/plain', 'not found');
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

/**
 * The page server (with `routes`) and headless Chromium for the tests of the suite that calls
 * this: both start in its `before` and stop in its `after`.
 *
 * @param {Routes} routes
 * @param {any} chromium what `findChromium` found
 * @returns {{origin: string, browser: any}} set once the suite's `before` has run
 */
export function servePages(routes, chromium) {
  const pages = { origin: '', browser: /** @type {any} */ (undefined) };
  /** @type {import('node:http').Server | undefined} */
  let server;
  before(async () => {
    server = await startPageServer(routes);
    const address = /** @type {import('node:net').AddressInfo} */ (server.address());
    pages.origin = `http://127.0.0.1:${address.port}`;
    pages.browser = await launchChromium(chromium);
  });
  after(async () => {
    await pages.browser?.close();
    await new Promise((resolve) => server?.close(resolve));
  });
  return pages;
}
