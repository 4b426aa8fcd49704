/**
 * Downloading a view's CSV (`tool_result.export`). The export route answers the user who owns
 * the tool call only, so the file cannot be a plain link: it is fetched with the user's token
 * and handed to the browser as a blob with a file name.
 *
 * @module download
 */

import { h } from './dom.js';

/**
 * The URL of an export path on the Parley server, or null for anything that is not a path on
 * it (the token must never travel to another origin). The path is resolved against the
 * server's base URL, as the socket and the status route are, so a server behind a path prefix
 * works too.
 *
 * @param {string} path e.g. `/api/v1/exports/call_1.csv`
 * @param {URL} server the server's base URL, ending with a slash
 * @returns {URL | null}
 */
export function exportUrl(path, server) {
  if (!/^\/[^/\\]/.test(path)) return null;
  const url = new URL(path.slice(1), server);
  return url.origin === server.origin ? url : null;
}

/**
 * Fetch `url` with a bearer token (a fresh one from `freshToken` if the first is refused) and
 * save the answer as a file.
 *
 * @param {URL} url
 * @param {{token: string | undefined, freshToken?: () => Promise<string> | string, container: Node}} options
 *   `container` holds the temporary link for the time of the click
 * @returns {Promise<string | undefined>} the token that worked, for the next request
 * @throws {Error} when the server does not answer with the file
 */
export async function downloadWithToken(url, { token, freshToken, container }) {
  /** @param {string | undefined} bearer */
  const get = (bearer) =>
    fetch(url, {
      headers: bearer === undefined ? {} : { authorization: `Bearer ${bearer}` },
      credentials: 'same-origin',
    });
  let response = await get(token);
  if (response.status === 401 && freshToken) {
    token = await freshToken();
    response = await get(token);
  }
  if (!response.ok) throw new Error(`export answered ${response.status}`);
  const href = URL.createObjectURL(await response.blob());
  const link = h('a', { href, download: url.pathname.split('/').pop() || 'export.csv' });
  link.hidden = true;
  container.appendChild(link);
  link.click();
  link.remove();
  // The browser has taken the file once the click's task is over.
  setTimeout(() => URL.revokeObjectURL(href), 1000);
  return token;
}
