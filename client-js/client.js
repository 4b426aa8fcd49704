/**
 * Parley browser client: one WebSocket to the Parley server, speaking protocol v1.
 *
 * It authenticates with `hello`, keeps the user's frame stream in order across reconnects
 * (resuming from `epoch` + `last_seq`, dropping duplicates by `seq`), reconnects with full-jitter
 * backoff on temporary close codes, resends user messages the server has not acknowledged, and
 * maintains a {@link ConversationModel} a UI can render from. No dependencies, no build step.
 *
 * ```js
 * import { ParleyClient } from '/client/client.js';
 * const client = new ParleyClient({ url: '/ws', getToken: async () => (await fetch('/token')).text() });
 * client.model.addEventListener('change', render);
 * client.connect();
 * client.sendMessage("what's our cash balance?");
 * ```
 *
 * Events (all `CustomEvent`s; `detail` as described):
 * - `state`: `{old, new}` connection state, one of `connecting`, `connected`, `disconnected`.
 *   `connected` means the handshake finished (`ready` arrived), not merely that the socket opened.
 * - `close`: `{code, reason, willReconnect, delayMs?}` every time the socket goes away.
 * - `frame`: every server frame (after duplicates were dropped), then one event named after the
 *   frame's `type` (`ready`, `message`, `thinking`, `tool_call`, `response_delta`, ...).
 * - `error`: server `error` frames, and errors the client raises itself in the same shape with
 *   `local: true` (`queue_full`, `invalid_json`, `invalid_frame`, `token_unavailable`).
 *
 * @module client
 */

import { backoffDelay, DEFAULT_BACKOFF } from './backoff.js';
import { ConversationModel } from './model.js';

export { backoffDelay } from './backoff.js';
export { ConversationModel } from './model.js';

/** @typedef {import('./types.js').ClientFrame} ClientFrame */
/** @typedef {import('./types.js').ServerFrame} ServerFrame */
/** @typedef {import('./types.js').ReadyFrame} ReadyFrame */
/** @typedef {import('./types.js').ErrorFrame} ErrorFrame */
/** @typedef {import('./types.js').HelloFrame} HelloFrame */
/** @typedef {import('./types.js').UserMessageFrame} UserMessageFrame */
/** @typedef {import('./types.js').ConnectionState} ConnectionState */
/** @typedef {import('./types.js').Decision} Decision */
/** @typedef {import('./types.js').Rating} Rating */
/** @typedef {import('./backoff.js').BackoffOptions} BackoffOptions */

/**
 * The part of the browser WebSocket API the client uses; tests inject a fake with this shape.
 *
 * @typedef {object} WebSocketLike
 * @property {number} readyState 1 when open
 * @property {(data: string) => void} send
 * @property {(code?: number, reason?: string) => void} close
 * @property {((event: any) => void) | null} onopen
 * @property {((event: {data: unknown}) => void) | null} onmessage
 * @property {((event: {code: number, reason: string}) => void) | null} onclose
 * @property {((event: any) => void) | null} onerror
 */

/** @typedef {new (url: string) => WebSocketLike} WebSocketConstructor */

/**
 * @typedef {object} ParleyClientOptions
 * @property {string} [url] WebSocket URL; `ws(s)://`, `http(s)://` or a path resolved against the
 *   page (default `/ws` on the page's origin)
 * @property {string} [token] a fixed bearer token (JWT)
 * @property {() => Promise<string> | string} [getToken] fetches a token; called on first connect, after
 *   close code 4401 (once per failed handshake) and when the server reports `token_expired`
 * @property {WebSocketConstructor} [WebSocket] WebSocket implementation (default the global one)
 * @property {BackoffOptions} [backoff] reconnect delays, full jitter (default 500 ms base, 30 s cap)
 * @property {() => number} [random] random source for the jitter (tests pin it)
 * @property {number} [maxQueued] how many frames may wait for a connection (default 100)
 * @property {string} [clientName] sent as `hello.client`, e.g. "erp-web/4.2"
 * @property {number} [pingIntervalMs] keepalive period while connected; 0 turns it off (default 25000)
 * @property {number} [pongTimeoutMs] a ping unanswered this long drops the socket (default 10000)
 */

/** The protocol version this client speaks. */
export const PROTOCOL_VERSION = 1;

/**
 * Close codes after which the client reconnects with backoff (protocol.md, "Temporary and
 * terminal close codes"): going away (1001), a lost connection (1006, also what the keepalive
 * reports), internal error (1011), restart (1012), try again later (1013) and too many
 * connections (4429). Every other code is terminal, 1000 and codes the protocol does not define
 * included: a server that ends a session on purpose must not be hammered by reconnects. 4401 is
 * the one exception the client makes, once, when `getToken` can fetch a fresh token.
 *
 * @type {ReadonlySet<number>}
 */
export const TEMPORARY_CLOSE_CODES = new Set([1001, 1006, 1011, 1012, 1013, 4429]);

/**
 * The terminal codes the protocol defines (every code not in `TEMPORARY_CLOSE_CODES` is
 * terminal; this list names the ones a server sends).
 *
 * @type {ReadonlySet<number>}
 */
export const TERMINAL_CLOSE_CODES = new Set([1000, 1008, 1009, 4400, 4401, 4403, 4426]);

/** The code the server closes with when the token is missing, invalid or expired. */
const UNAUTHENTICATED = 4401;

/** Close code used locally when the keepalive finds a silent connection (as the browser does). */
const ABNORMAL_CLOSURE = 1006;

const OPEN = 1;

/**
 * Whether the client should reconnect after the socket closed with `code`.
 *
 * @param {number} code
 * @returns {boolean}
 */
export function isTemporaryClose(code) {
  return TEMPORARY_CLOSE_CODES.has(code);
}

/**
 * Turn `url` into a WebSocket URL: http(s) becomes ws(s), a path is resolved against the page.
 *
 * @param {string | undefined} url
 * @param {string | undefined} [base] the page URL (default `location.href` when there is one)
 * @returns {string}
 */
export function toWebSocketUrl(url, base = globalThis.location?.href) {
  const resolved = new URL(url ?? '/ws', base);
  if (resolved.protocol === 'http:') resolved.protocol = 'ws:';
  else if (resolved.protocol === 'https:') resolved.protocol = 'wss:';
  return resolved.href;
}

/**
 * A random UUID. `crypto.randomUUID` exists only in secure contexts (https, localhost), but an
 * ERP on a plain-http intranet host must still get unique client message ids.
 *
 * @returns {string}
 */
export function newId() {
  if (typeof globalThis.crypto?.randomUUID === 'function') return globalThis.crypto.randomUUID();
  const bytes = new Uint8Array(16);
  globalThis.crypto.getRandomValues(bytes);
  bytes[6] = (bytes[6] & 0x0f) | 0x40; // version 4
  bytes[8] = (bytes[8] & 0x3f) | 0x80; // RFC 4122 variant
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * A user message not yet mirrored back by the server, and the socket it last went out on.
 *
 * @typedef {object} UnackedMessage
 * @property {UserMessageFrame} frame
 * @property {WebSocketLike | null} sentOn
 */

/** A connection to Parley for one user; see the module documentation for the events. */
export class ParleyClient extends EventTarget {
  /** The conversations, turns and confirmations seen so far; fires `change`. */
  model = new ConversationModel();
  /** @type {number | undefined} Date.now() when the last pong arrived */
  lastPongAt = undefined;
  /** @type {number | undefined} round-trip time of the last answered ping, in ms */
  rttMs = undefined;

  /**
   * @type {ParleyClientOptions
   *   & Required<Pick<ParleyClientOptions, 'maxQueued' | 'pingIntervalMs' | 'pongTimeoutMs'>>}
   */
  #options;
  /** @type {WebSocketConstructor} */
  #WebSocket;
  /** @type {WebSocketLike | null} */
  #socket = null;
  /** @type {ConnectionState} */
  #state = 'disconnected';
  /** @type {string | undefined} */
  #token;
  /** @type {string | undefined} epoch of the user's frame log that `#lastSeq` belongs to */
  #epoch;
  /** @type {number | undefined} highest `seq` applied under `#epoch` */
  #lastSeq;
  /** @type {ClientFrame[]} frames waiting for a connection, oldest first */
  #queue = [];
  /** @type {Map<string, UnackedMessage>} by client_msg_id, in sending order */
  #unacked = new Map();
  /** reconnect attempts since the last successful handshake */
  #attempt = 0;
  /** whether a fresh token was already tried for the current run of failed handshakes */
  #tokenRefreshed = false;
  /** set by close(): no reconnecting until connect() is called again */
  #stopped = true;
  /** bumps on every connect/close so a stale async step can tell it was superseded */
  #generation = 0;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  #reconnectTimer;
  /** @type {ReturnType<typeof setInterval> | undefined} */
  #pingTimer;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  #pongTimer;
  #onOnline = () => this.#reconnectNow();

  /** @param {ParleyClientOptions} [options] */
  constructor(options = {}) {
    super();
    this.#options = { maxQueued: 100, pingIntervalMs: 25_000, pongTimeoutMs: 10_000, ...options };
    const Impl =
      options.WebSocket ?? /** @type {WebSocketConstructor | undefined} */ (globalThis.WebSocket);
    if (!Impl) throw new TypeError('no WebSocket implementation: pass options.WebSocket');
    this.#WebSocket = Impl;
    this.#token = options.token;
  }

  // ------------------------------------------------------------------------------------------
  // Read-only state
  // ------------------------------------------------------------------------------------------

  /** @returns {ConnectionState} */
  get state() {
    return this.#state;
  }

  /** @returns {string | undefined} epoch of the frame log this client follows */
  get epoch() {
    return this.#epoch;
  }

  /** @returns {number | undefined} the last `seq` applied; sent as `hello.last_seq` on reconnect */
  get lastSeq() {
    return this.#lastSeq;
  }

  /** @returns {string[]} client_msg_ids of user messages not yet acknowledged by the server */
  get unacknowledged() {
    return [...this.#unacked.keys()];
  }

  /** @returns {number} frames waiting for their first send (not resends of unacknowledged messages) */
  get queued() {
    return this.#queue.length;
  }

  // ------------------------------------------------------------------------------------------
  // Connection lifecycle
  // ------------------------------------------------------------------------------------------

  /** Open the connection (no-op if already open or opening); reconnects until close(). */
  connect() {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#attempt = 0;
    this.#tokenRefreshed = false;
    globalThis.addEventListener?.('online', this.#onOnline);
    void this.#open();
  }

  /**
   * Close the connection and stop reconnecting. Running turns continue on the server.
   *
   * @param {number} [code]
   * @param {string} [reason]
   */
  close(code = 1000, reason = '') {
    this.#stopped = true;
    this.#generation += 1;
    globalThis.removeEventListener?.('online', this.#onOnline);
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = undefined;
    this.#stopKeepalive();
    this.#discardSocket(code, reason);
    this.#setState('disconnected');
  }

  /**
   * Authenticate again on the open connection with a fresh token (the server asks with an
   * `error` frame `token_expired`; the client does this itself when it has `getToken`).
   *
   * @param {string} [token] the new token; fetched with `getToken` when omitted
   * @returns {Promise<void>}
   */
  async reauthenticate(token) {
    if (token !== undefined) this.#token = token;
    else if (!(await this.#refreshToken())) return;
    const socket = this.#socket;
    if (socket && socket.readyState === OPEN) this.#write(socket, this.#hello());
  }

  async #open() {
    const generation = ++this.#generation;
    this.#setState('connecting');
    let token;
    try {
      token = await this.#currentToken();
    } catch (err) {
      if (generation !== this.#generation) return;
      this.#localError('token_unavailable', `could not get a token: ${describe(err)}`, true);
      this.#scheduleReconnect(ABNORMAL_CLOSURE, 'no token');
      return;
    }
    if (generation !== this.#generation || this.#stopped) return;
    this.#token = token;
    // Never two sockets at once: a leftover one would stay open, unseen, until the server drops it.
    this.#discardSocket();
    /** @type {WebSocketLike} */
    let socket;
    try {
      socket = new this.#WebSocket(toWebSocketUrl(this.#options.url));
    } catch (err) {
      this.#localError('connect_failed', `could not open the connection: ${describe(err)}`, true);
      this.#scheduleReconnect(ABNORMAL_CLOSURE, 'constructor failed');
      return;
    }
    this.#socket = socket;
    socket.onopen = () => {
      if (this.#socket === socket) this.#write(socket, this.#hello());
    };
    socket.onmessage = (event) => {
      if (this.#socket === socket) this.#receive(event.data);
    };
    socket.onclose = (event) => {
      if (this.#socket === socket) this.#closed(event.code, event.reason);
    };
    // An error is always followed by close, which is where the decision is made.
    socket.onerror = () => {};
  }

  /**
   * The socket went away: reconnect after a backoff delay, or stop for good.
   *
   * @param {number} code
   * @param {string} reason
   */
  #closed(code, reason) {
    this.#socket = null;
    this.#stopKeepalive();
    if (this.#stopped) return;
    if (code === UNAUTHENTICATED && this.#options.getToken && !this.#tokenRefreshed) {
      // The token probably expired while we were away: fetch a new one and retry at once, once.
      this.#tokenRefreshed = true;
      this.#token = undefined;
      this.#setState('disconnected');
      this.#emit('close', { code, reason, willReconnect: true, delayMs: 0 });
      this.#reconnectTimer = setTimeout(() => {
        this.#reconnectTimer = undefined;
        void this.#open();
      }, 0);
      return;
    }
    if (!isTemporaryClose(code)) {
      this.#stopped = true;
      globalThis.removeEventListener?.('online', this.#onOnline);
      this.#setState('disconnected');
      this.#emit('close', { code, reason, willReconnect: false });
      return;
    }
    this.#scheduleReconnect(code, reason);
  }

  /**
   * @param {number} code
   * @param {string} reason
   */
  #scheduleReconnect(code, reason) {
    this.#socket = null;
    const delayMs = backoffDelay(
      this.#attempt,
      this.#options.backoff ?? DEFAULT_BACKOFF,
      this.#options.random,
    );
    this.#attempt += 1;
    this.#setState('disconnected');
    this.#emit('close', { code, reason, willReconnect: true, delayMs });
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined;
      void this.#open();
    }, delayMs);
  }

  /** The network came back: skip the rest of the backoff wait. */
  #reconnectNow() {
    if (this.#stopped || this.#reconnectTimer === undefined) return;
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = undefined;
    void this.#open();
  }

  /** @returns {Promise<string | undefined>} */
  async #currentToken() {
    if (this.#token === undefined && this.#options.getToken) {
      this.#token = await this.#options.getToken();
    }
    return this.#token;
  }

  /** @returns {Promise<boolean>} whether a new token was fetched */
  async #refreshToken() {
    if (!this.#options.getToken) return false;
    try {
      this.#token = await this.#options.getToken();
      return true;
    } catch (err) {
      this.#localError('token_unavailable', `could not get a token: ${describe(err)}`, true);
      return false;
    }
  }

  /** @returns {HelloFrame} */
  #hello() {
    // Keys in protocol field order, so the text equals what the server's encoder would produce.
    /** @type {HelloFrame} */
    const hello = { type: 'hello', protocol: PROTOCOL_VERSION };
    if (this.#token !== undefined) hello.token = this.#token;
    if (this.#epoch !== undefined && this.#lastSeq !== undefined) {
      hello.epoch = this.#epoch;
      hello.last_seq = this.#lastSeq;
    }
    if (this.#options.clientName !== undefined) hello.client = this.#options.clientName;
    return hello;
  }

  /**
   * @param {ConnectionState} next
   */
  #setState(next) {
    const old = this.#state;
    if (old === next) return;
    this.#state = next;
    this.#emit('state', { old, new: next });
  }

  // ------------------------------------------------------------------------------------------
  // Receiving
  // ------------------------------------------------------------------------------------------

  /** @param {unknown} data */
  #receive(data) {
    if (typeof data !== 'string') {
      this.#localError('invalid_frame', 'binary frame from the server', false);
      return;
    }
    /** @type {unknown} */
    let parsed;
    try {
      parsed = JSON.parse(data);
    } catch {
      this.#localError('invalid_json', 'the server sent text that is not JSON', false);
      return;
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      this.#localError('invalid_frame', 'the server sent JSON that is not an object', false);
      return;
    }
    const frame = /** @type {ServerFrame} */ (parsed);
    if (typeof frame.type !== 'string') {
      this.#localError('invalid_frame', "frame without a 'type'", false);
      return;
    }
    if ('seq' in frame && typeof frame.seq === 'number') {
      // seq is strictly +1 per user under one epoch: anything not newer was applied already.
      if (this.#lastSeq !== undefined && frame.seq <= this.#lastSeq) return;
      this.#lastSeq = frame.seq;
    }
    this.#dispatchFrame(frame);
  }

  /** @param {ServerFrame} frame */
  #dispatchFrame(frame) {
    try {
      this.#applyFrame(frame);
    } catch (err) {
      // A frame of a known type but the wrong shape must not take the connection down with it.
      this.#localError(
        'invalid_frame',
        `could not apply a '${frame.type}' frame: ${describe(err)}`,
        false,
      );
      return;
    }
    this.#emit('frame', frame);
    // For error frames this is the `error` event, shared with the client's own errors.
    this.#emit(frame.type, frame);
  }

  /** @param {ServerFrame} frame */
  #applyFrame(frame) {
    switch (frame.type) {
      case 'ready':
        this.#ready(frame);
        break;
      case 'message':
        this.#unacked.delete(frame.client_msg_id);
        this.model.apply(frame);
        break;
      case 'pong':
        this.#pong(frame.t);
        break;
      case 'error':
        this.#serverError(frame);
        break;
      default:
        this.model.apply(frame);
    }
  }

  /** @param {ReadyFrame} ready */
  #ready(ready) {
    this.#attempt = 0;
    this.#tokenRefreshed = false;
    if (!ready.resumed || ready.epoch !== this.#epoch) {
      // The server could not replay what we missed (or the log is new): start from its snapshot.
      this.#epoch = ready.epoch;
      this.#lastSeq = ready.last_seq;
      this.model.reset(ready);
    } else {
      // Keep our own last_seq: the replay that follows starts right after it.
      this.model.refresh(ready);
    }
    this.#setState('connected');
    this.#startKeepalive();
    const socket = this.#socket;
    if (!socket) return;
    // Messages that went out on an earlier socket come first: they were sent before anything
    // queued since. The same client_msg_id makes a resend idempotent on the server.
    for (const entry of this.#unacked.values()) {
      if (entry.sentOn !== null && entry.sentOn !== socket) {
        entry.sentOn = socket;
        this.#write(socket, entry.frame);
      }
    }
    // Then the queue in order, so a queued `cancel` cannot overtake an earlier queued message.
    for (const frame of this.#queue.splice(0)) {
      if (frame.type === 'user_message') {
        const entry = this.#unacked.get(frame.client_msg_id);
        if (!entry || entry.sentOn === socket) continue;
        entry.sentOn = socket;
      }
      this.#write(socket, frame);
    }
  }

  /** @param {ErrorFrame} error */
  #serverError(error) {
    if (error.ref !== undefined && this.#unacked.has(error.ref)) {
      // The server refused this message; resending it would be refused again.
      this.#unacked.delete(error.ref);
      this.model.failPending(error.ref, error);
    }
    if (error.code === 'token_expired' && this.#options.getToken) void this.reauthenticate();
  }

  // ------------------------------------------------------------------------------------------
  // Sending
  // ------------------------------------------------------------------------------------------

  /**
   * Send a frame now, or queue it until the connection is ready. `typing` and `ping` are only
   * meaningful now and are dropped while disconnected. When the queue is full the new frame is
   * refused (the oldest are kept, since they were asked for first) and an `error` event with code
   * `queue_full` fires.
   *
   * @param {ClientFrame} frame
   * @returns {boolean} whether the frame was sent or queued
   */
  send(frame) {
    const socket = this.#openSocket();
    if (socket) {
      this.#write(socket, frame);
      return true;
    }
    if (frame.type === 'typing' || frame.type === 'ping') return false;
    if (!this.#roomInQueue()) return false;
    this.#queue.push(frame);
    return true;
  }

  /**
   * Send a user message. It shows at once in `model.pending`, stays unacknowledged until the
   * server mirrors it back as a `message` frame, and is resent with the same id after a reconnect.
   *
   * @param {string} text
   * @param {{conversationId?: string, context?: Record<string, unknown>, profile?: string}} [options]
   *   `context`: what the host page is showing (record ids, filters), passed to the model;
   *   `profile`: the profile (copilot, one of `model.profiles`) a new conversation runs under.
   *   Only the first message of a new conversation carries it (the server binds a conversation
   *   once), so it is left out when `conversationId` is given.
   * @returns {string | null} the client_msg_id, or null when the queue is full
   */
  sendMessage(text, options = {}) {
    const socket = this.#openSocket();
    if (!socket && !this.#roomInQueue()) return null;
    /** @type {UserMessageFrame} */
    const frame = { type: 'user_message', client_msg_id: newId(), text };
    if (options.conversationId !== undefined) frame.conversation_id = options.conversationId;
    if (options.context !== undefined) frame.context = options.context;
    if (options.profile !== undefined && options.conversationId === undefined) {
      frame.profile = options.profile;
    }
    this.#unacked.set(frame.client_msg_id, { frame, sentOn: socket });
    this.model.addPending(frame);
    if (socket) this.#write(socket, frame);
    else this.#queue.push(frame);
    return frame.client_msg_id;
  }

  /**
   * Send a failed message again with its original client_msg_id.
   *
   * @param {string} clientMsgId
   * @param {{profile?: string | null}} [options] `profile`: for a message that starts a
   *   conversation, ask for this profile instead (after `profile_not_found` or `forbidden`);
   *   null asks for none, the default one
   * @returns {boolean} false when no such pending message exists
   */
  retryMessage(clientMsgId, options = {}) {
    const item = this.model.pending.get(clientMsgId);
    if (!item || this.#unacked.has(clientMsgId)) return false;
    /** @type {UserMessageFrame} */
    const frame = { type: 'user_message', client_msg_id: clientMsgId, text: item.text };
    if (item.conversationId) frame.conversation_id = item.conversationId;
    if (item.context) frame.context = item.context;
    const profile = options.profile === undefined ? item.profile : options.profile;
    if (!item.conversationId && profile !== null && profile !== undefined) frame.profile = profile;
    const socket = this.#openSocket();
    if (!socket && !this.#roomInQueue()) return false;
    this.#unacked.set(clientMsgId, { frame, sentOn: socket });
    this.model.retryPending(clientMsgId, frame.profile);
    if (socket) this.#write(socket, frame);
    else this.#queue.push(frame);
    return true;
  }

  /**
   * Approve or reject a pending action (any tab of the user may decide).
   *
   * @param {string} token the `confirm_request` token
   * @param {Decision} decision
   * @param {Record<string, unknown>} [params] the parameters as the user edited them (approve)
   * @returns {boolean}
   */
  confirm(token, decision, params) {
    /** @type {import('./types.js').ConfirmFrame} */
    const frame = { type: 'confirm', token, decision };
    if (params !== undefined) frame.params = params;
    return this.send(frame);
  }

  /**
   * Stop the running turn of a conversation.
   *
   * @param {string} conversationId
   * @param {string} [turnId]
   * @returns {boolean}
   */
  cancel(conversationId, turnId) {
    /** @type {import('./types.js').CancelFrame} */
    const frame = { type: 'cancel', conversation_id: conversationId };
    if (turnId !== undefined) frame.turn_id = turnId;
    return this.send(frame);
  }

  /**
   * Tell the user's other tabs that they are (not) typing.
   *
   * @param {string} conversationId
   * @param {boolean} active
   * @returns {boolean}
   */
  typing(conversationId, active) {
    return this.send({ type: 'typing', conversation_id: conversationId, active });
  }

  /**
   * Rate an assistant message.
   *
   * @param {string} messageId
   * @param {Rating} rating "up", "down" or 1..5
   * @param {string} [comment]
   * @returns {boolean}
   */
  feedback(messageId, rating, comment) {
    /** @type {import('./types.js').FeedbackFrame} */
    const frame = { type: 'feedback', message_id: messageId, rating };
    if (comment !== undefined) frame.comment = comment;
    return this.send(frame);
  }

  /**
   * Send a keepalive ping now; the answer updates `lastPongAt` and `rttMs`.
   *
   * @returns {boolean}
   */
  ping() {
    const sent = this.send({ type: 'ping', t: Date.now() });
    if (sent && this.#pongTimer === undefined && this.#options.pongTimeoutMs > 0) {
      this.#pongTimer = setTimeout(() => this.#pongMissed(), this.#options.pongTimeoutMs);
    }
    return sent;
  }

  /** @returns {WebSocketLike | null} the socket when the handshake is done and it is open */
  #openSocket() {
    const socket = this.#socket;
    return this.#state === 'connected' && socket && socket.readyState === OPEN ? socket : null;
  }

  /** @returns {boolean} */
  #roomInQueue() {
    if (this.#queue.length + this.#unsentMessages() < this.#options.maxQueued) return true;
    this.#localError(
      'queue_full',
      `not connected and ${this.#options.maxQueued} frames are already waiting`,
      true,
    );
    return false;
  }

  /** @returns {number} messages sent on an earlier socket that wait to be resent */
  #unsentMessages() {
    const socket = this.#socket;
    let count = 0;
    for (const entry of this.#unacked.values()) {
      // Messages never sent at all are in the queue already and counted there.
      if (entry.sentOn !== null && entry.sentOn !== socket) count += 1;
    }
    return count;
  }

  /**
   * @param {WebSocketLike} socket
   * @param {ClientFrame} frame
   */
  #write(socket, frame) {
    socket.send(JSON.stringify(frame));
  }

  // ------------------------------------------------------------------------------------------
  // Keepalive
  // ------------------------------------------------------------------------------------------

  #startKeepalive() {
    this.#stopKeepalive();
    if (this.#options.pingIntervalMs > 0) {
      this.#pingTimer = setInterval(() => this.ping(), this.#options.pingIntervalMs);
    }
  }

  #stopKeepalive() {
    clearInterval(this.#pingTimer);
    clearTimeout(this.#pongTimer);
    this.#pingTimer = undefined;
    this.#pongTimer = undefined;
  }

  /** @param {number | undefined} t */
  #pong(t) {
    clearTimeout(this.#pongTimer);
    this.#pongTimer = undefined;
    this.lastPongAt = Date.now();
    if (typeof t === 'number') this.rttMs = Math.max(0, this.lastPongAt - t);
  }

  /** No pong in time: the connection is dead even if the browser has not noticed yet. */
  #pongMissed() {
    this.#pongTimer = undefined;
    if (!this.#socket) return;
    this.#discardSocket(4000, 'keepalive timeout');
    this.#closed(ABNORMAL_CLOSURE, 'keepalive timeout');
  }

  /**
   * Close the current socket, if any, without reacting to its close event.
   *
   * @param {number} [code]
   * @param {string} [reason]
   */
  #discardSocket(code = 1000, reason = '') {
    const socket = this.#socket;
    this.#socket = null;
    if (!socket) return;
    try {
      socket.close(code, reason);
    } catch {
      // Closing a dead socket may throw in some browsers; it is gone either way.
    }
  }

  // ------------------------------------------------------------------------------------------
  // Events
  // ------------------------------------------------------------------------------------------

  /**
   * @param {string} code
   * @param {string} message
   * @param {boolean} retryable
   */
  #localError(code, message, retryable) {
    /** @type {ErrorFrame} */
    const error = { type: 'error', code, message, retryable, local: true };
    this.#emit('error', error);
  }

  /**
   * @param {string} type
   * @param {unknown} detail
   */
  #emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}

/**
 * @param {unknown} err
 * @returns {string}
 */
function describe(err) {
  return err instanceof Error ? err.message : String(err);
}
