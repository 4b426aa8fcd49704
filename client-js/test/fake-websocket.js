/**
 * A stand-in for the browser's WebSocket, driven by the test: it records what the client sends
 * and lets the test open it, deliver server text and close it with any code.
 */

export const CONNECTING = 0;
export const OPEN = 1;
export const CLOSED = 3;

/**
 * A fresh WebSocket class with its own list of instances, so tests do not share sockets.
 *
 * @returns {typeof FakeWebSocketBase & {instances: FakeWebSocketBase[]}}
 */
export function fakeWebSocketClass() {
  /** @type {FakeWebSocketBase[]} */
  const instances = [];
  return class FakeWebSocket extends FakeWebSocketBase {
    static instances = instances;
    /** @param {string} url */
    constructor(url) {
      super(url);
      instances.push(this);
    }
  };
}

export class FakeWebSocketBase {
  /** @param {string} url */
  constructor(url) {
    this.url = url;
    this.readyState = CONNECTING;
    /** @type {string[]} */
    this.sent = [];
    /** @type {{code: number, reason: string} | undefined} set when the client closed it */
    this.closedByClient = undefined;
    /** @type {((event: unknown) => void) | null} */
    this.onopen = null;
    /** @type {((event: {data: unknown}) => void) | null} */
    this.onmessage = null;
    /** @type {((event: {code: number, reason: string}) => void) | null} */
    this.onclose = null;
    /** @type {((event: unknown) => void) | null} */
    this.onerror = null;
  }

  /** @param {string} data */
  send(data) {
    if (this.readyState !== OPEN) throw new Error('InvalidStateError: socket is not open');
    this.sent.push(data);
  }

  close(code = 1000, reason = '') {
    if (this.readyState === CLOSED) return;
    this.readyState = CLOSED;
    this.closedByClient = { code, reason };
    // Browsers report the close asynchronously, after the closing handshake.
    queueMicrotask(() => this.onclose?.({ code, reason }));
  }

  // --- driven by the test -------------------------------------------------------------------

  /** The server accepted the connection. */
  open() {
    this.readyState = OPEN;
    this.onopen?.({});
  }

  /** @param {string | object} frame text as it would arrive, or an object to serialize */
  receive(frame) {
    const data = typeof frame === 'string' ? frame : JSON.stringify(frame);
    this.onmessage?.({ data });
  }

  /** The server (or the network) closed the connection. */
  serverClose(code, reason = '') {
    this.readyState = CLOSED;
    this.onclose?.({ code, reason });
  }

  /** @returns {any[]} the frames the client sent, parsed */
  frames() {
    return this.sent.map((text) => JSON.parse(text));
  }

  /** @param {string} type @returns {any[]} */
  framesOfType(type) {
    return this.frames().filter((frame) => frame.type === type);
  }
}

/**
 * Wait until `predicate` holds, giving pending promises and timers a chance to run.
 *
 * @param {() => unknown} predicate
 * @param {number} [timeoutMs]
 */
export async function waitFor(predicate, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

/**
 * A `ready` frame with sensible defaults.
 *
 * @param {Record<string, unknown>} [fields]
 */
export function readyFrame(fields = {}) {
  return {
    type: 'ready',
    protocol: 1,
    connection_id: 'c-1',
    user: { id: 'alice', tenant: 'acme', roles: ['admin'], name: 'Alice' },
    epoch: 'e1',
    last_seq: 0,
    resumed: false,
    conversations: [],
    pending_confirmations: [],
    active_turns: [],
    ...fields,
  };
}
