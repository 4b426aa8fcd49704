/**
 * The REST calls the widget makes beside its socket, with the same token: a conversation's
 * stored messages, rename and archive, and escalation to a person. The server tells every tab
 * about a change with a `conversation_updated` frame, so a caller only needs to know whether
 * its request went through.
 *
 * @module rest
 */

/** @typedef {import('../types.js').MessageSnapshot} MessageSnapshot */

/** How many stored messages a conversation switched to shows (the newest ones). */
export const HISTORY_LIMIT = 50;

/**
 * @typedef {object} RestOptions
 * @property {() => URL} server the server's base URL, ending with a slash
 * @property {() => string | undefined} token the token the socket was last given
 * @property {(() => Promise<string> | string) | undefined} freshToken fetches a new token, for
 *   a request answered 401 with the old one
 */

/** A REST request that was not answered 2xx. */
export class RestError extends Error {
  /**
   * @param {number} status
   * @param {string} message
   */
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** The widget's REST calls, each authenticated like the socket. */
export class RestApi {
  #options;

  /** @param {RestOptions} options */
  constructor(options) {
    this.#options = options;
  }

  /**
   * The newest stored messages of a conversation, oldest first.
   *
   * @param {string} conversationId
   * @returns {Promise<MessageSnapshot[]>}
   */
  async history(conversationId) {
    const path = `api/v1/conversations/${encodeURIComponent(conversationId)}/messages`;
    const page = await this.#request('GET', `${path}?limit=${HISTORY_LIMIT}`);
    const items = Array.isArray(page?.items) ? page.items : [];
    // A reply's tool lines are `tool_lines` here (`tools` lists the tools' names); the model
    // takes them as a snapshot message's `tools`.
    return items.reverse().map((/** @type {Record<string, unknown>} */ item) => {
      const { tools: _names, tool_lines: lines, ...message } = item;
      return /** @type {MessageSnapshot} */ (lines ? { ...message, tools: lines } : message);
    });
  }

  /**
   * Rename, archive or restore a conversation.
   *
   * @param {string} conversationId
   * @param {{title?: string, archived?: boolean}} change
   * @returns {Promise<void>}
   */
  async update(conversationId, change) {
    await this.#request(
      'PATCH',
      `api/v1/conversations/${encodeURIComponent(conversationId)}`,
      change,
    );
  }

  /**
   * Hand a conversation over to a person.
   *
   * @param {string} conversationId
   * @param {string} reason
   * @returns {Promise<void>}
   */
  async escalate(conversationId, reason) {
    await this.#request(
      'POST',
      `api/v1/conversations/${encodeURIComponent(conversationId)}/escalate`,
      { reason },
    );
  }

  /**
   * @param {string} method
   * @param {string} path relative to the server's base URL
   * @param {unknown} [body]
   * @returns {Promise<any>}
   */
  async #request(method, path, body) {
    const url = new URL(path, this.#options.server());
    let response = await this.#send(method, url, body, this.#options.token());
    // The socket's token may have expired meanwhile: one retry with a fresh one.
    if (response.status === 401 && this.#options.freshToken) {
      response = await this.#send(method, url, body, await this.#options.freshToken());
    }
    if (!response.ok) {
      const problem = await response.json().catch(() => null);
      throw new RestError(response.status, String(problem?.message ?? response.statusText));
    }
    return response.status === 204 ? null : response.json();
  }

  /**
   * @param {string} method
   * @param {URL} url
   * @param {unknown} body
   * @param {string | undefined} token
   * @returns {Promise<Response>}
   */
  #send(method, url, body, token) {
    /** @type {Record<string, string>} */
    const headers = { accept: 'application/json' };
    if (token !== undefined) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    return fetch(url, {
      method,
      headers,
      credentials: 'same-origin',
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
  }
}
