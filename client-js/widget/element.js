/**
 * `<parley-assistant>`: the embeddable Parley chat widget, a custom element with Shadow DOM.
 *
 * ```html
 * <script type="module" src="https://parley.example.com/client/widget.js"></script>
 * <parley-assistant token-url="/parley-token" title="Assistant"></parley-assistant>
 * ```
 *
 * Attributes:
 * - `server`: base URL of the Parley server (default: the page's origin). The socket is
 *   `<server>/ws`, the status route `<server>/api/v1/status`.
 * - `token-url`: a URL (resolved against the page) answering `{"token": "..."}`; fetched with the
 *   page's cookies whenever a token is needed. Without it no token is sent (cookie auth), unless
 *   the page sets the `getToken` property.
 * - `title`: the panel heading (default "Assistant").
 * - `open`: present while the panel is open; set it to start open.
 * - `suggestions`: prompts offered on an empty conversation, separated by `|` (a profile's own
 *   suggestions take their place).
 * - `profile`: the profile (copilot) new conversations run under, one of `ready.profiles`; when
 *   the user may use more than one, a switcher lets them choose for each new conversation.
 * - `lazy`: connect on first open instead of at once.
 *
 * Properties: `client` (the {@link ParleyClient}), `getToken` (async () => string), `context`
 * (an object, or a function returning one, sent with each message: what the page shows).
 * Methods: `show()`, `hide()`, `toggle()`, `send(text)`, `registerTool(name, options, handler)`
 * (a page tool, as {@link ParleyClient#registerTool}; kept across reconnects and identities).
 *
 * Theming: `--parley-accent`, `--parley-bg`, `--parley-fg`, `--parley-muted`, `--parley-radius`,
 * `--parley-font`, `--parley-z`; parts: `launcher`, `panel`, `header`.
 *
 * - `lang`: the widget's language and the locale numbers, money and dates are formatted in.
 *   Without it the widget speaks the user's locale from `ready.locale` (the token's `locale`
 *   claim), else English; numbers and dates then follow `ready.locale`, else the page's
 *   `<html lang>`, else the browser's language. Every string comes from catalog.js (English
 *   and German).
 *
 * The header's list button shows the user's conversations: switch, rename, archive, with a
 * marker on those that changed while not on screen; "Talk to a person" hands the conversation
 * to the help desk (conversation-panel.js). Both use the REST API with the socket's token
 * (rest.js); every tab learns the outcome from `conversation_updated`. A confirmation card's
 * params can be edited before approving (card-edit.js).
 *
 * User text is rendered with `textContent`; assistant text as Markdown through markdown-it and
 * DOMPurify (markdown.js). Views of tool results (views.js) and confirmation params (params.js)
 * are built from DOM calls, their values set as text.
 *
 * @module widget
 */

import { ParleyClient } from '../client.js';
import { changedParams } from './card-edit.js';
import { pickLanguage, translator } from './catalog.js';
import { ConversationPanel } from './conversation-panel.js';
import { h, icon } from './dom.js';
import { downloadWithToken, exportUrl } from './download.js';
import { usableLocale } from './format.js';
import { ItemRenderer } from './items.js';
import { ProfileChooser, profileTitle } from './profiles.js';
import { RestApi } from './rest.js';
import { StaticTexts } from './static-texts.js';
import { WIDGET_STYLE } from './style.js';
import { closeSentence, errorSentence } from './wording.js';

/** @typedef {import('../types.js').ConversationItem} ConversationItem */
/** @typedef {import('../types.js').MessageItem} MessageItem */
/** @typedef {import('../types.js').ToolItem} ToolItem */
/** @typedef {import('../types.js').ConfirmationItem} ConfirmationItem */
/** @typedef {import('../types.js').ErrorFrame} ErrorFrame */
/** @typedef {import('../types.js').MessageFrame} MessageFrame */
/** @typedef {import('../types.js').ReadyFrame} ReadyFrame */
/** @typedef {import('../types.js').ConnectionState} ConnectionState */
/** @typedef {import('../types.js').ChangeDetail} ChangeDetail */

/** How long a typing signal counts as "still typing" before the widget says it stopped. */
const TYPING_IDLE_MS = 4000;
/** How long an error note stays up. */
const ERROR_VISIBLE_MS = 10_000;

/** The `<parley-assistant>` element. */
export class ParleyAssistant extends HTMLElement {
  static observedAttributes = [
    'server',
    'token-url',
    'title',
    'open',
    'suggestions',
    'profile',
    'lang',
  ];

  /** @type {(() => Promise<string> | string) | undefined} set by the page to supply tokens itself */
  getToken = undefined;
  /** @type {Record<string, unknown> | (() => Record<string, unknown> | undefined) | undefined} */
  context = undefined;

  /** @type {ParleyClient | null} */
  #client = null;
  /** @type {Map<string, {attach: (client: ParleyClient) => void, withdraw: () => void}>} page
   * tools, given to each client this element makes */
  #pageTools = new Map();
  #built = false;
  /** @type {string | undefined} the conversation on screen; undefined = a new one */
  #conversationId = undefined;
  /** whether the user picked "new conversation", so activity elsewhere does not pull them away */
  #pinnedNew = false;
  #wasConnected = false;
  #renderQueued = false;
  #statusFetched = false;
  /** @type {string | undefined} the token last fetched for the socket, reused for the status route */
  #lastToken = undefined;
  /** @type {Map<string, HTMLElement>} rendered items by key */
  #nodes = new Map();
  /** @type {Map<string, 'approve' | 'reject'>} decisions sent but not yet resolved */
  #deciding = new Map();
  /** @type {Map<string, 'up' | 'down'>} feedback given per assistant message */
  #ratings = new Map();
  /** @type {Set<string>} cards whose params are being edited, by token */
  #editing = new Set();
  /** @type {Map<string, string>} what is wrong with a card's edited params, by token */
  #cardErrors = new Map();
  /** the frame's texts, and the lookup of the language the widget speaks */
  #texts = new StaticTexts();
  /** the language and locale the transcript was last drawn in */
  #drawnIn = '';
  /** @type {string | undefined} the user's locale, from `ready.locale` */
  #userLocale = undefined;
  #items = new ItemRenderer({
    deciding: this.#deciding,
    ratings: this.#ratings,
    locale: () => this.#locale(),
    profileTitle: (id) => profileTitle(this.#client?.model.profiles ?? [], id),
    words: () => this.#texts.t,
    editing: this.#editing,
    cardErrors: this.#cardErrors,
  });
  #conversations = new ConversationPanel({
    current: () => this.#conversationId,
    open: (id) => {
      this.#pinnedNew = false;
      this.#switchTo(id);
    },
    leave: () => this.#newConversation(),
    render: () => this.#scheduleRender(),
    showError: (sentence) => this.#showError(sentence),
    words: () => this.#texts.t,
    model: () => this.#client?.model,
  });
  #profiles = new ProfileChooser({
    onSuggestion: (text) => this.send(text),
    onPick: () => this.#scheduleRender(),
  });
  /** @type {ReturnType<typeof setInterval> | undefined} */
  #countdownTimer;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  #errorTimer;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  #typingTimer;
  /** @type {string | undefined} conversation we last told other tabs we were typing in */
  #typingIn;

  // Elements, created in #build().
  #root = /** @type {ShadowRoot} */ (/** @type {unknown} */ (null));
  #launcher = /** @type {HTMLButtonElement} */ (/** @type {unknown} */ (null));
  #badge = /** @type {HTMLElement} */ (/** @type {unknown} */ (null));
  #panel = /** @type {HTMLElement} */ (/** @type {unknown} */ (null));
  #heading = /** @type {HTMLElement} */ (/** @type {unknown} */ (null));
  #stateLabel = /** @type {HTMLElement} */ (/** @type {unknown} */ (null));
  #devLabel = /** @type {HTMLElement} */ (/** @type {unknown} */ (null));
  #banner = /** @type {HTMLElement} */ (/** @type {unknown} */ (null));
  #bannerText = /** @type {HTMLElement} */ (/** @type {unknown} */ (null));
  #bannerRetry = /** @type {HTMLButtonElement} */ (/** @type {unknown} */ (null));
  #log = /** @type {HTMLElement} */ (/** @type {unknown} */ (null));
  #typing = /** @type {HTMLElement} */ (/** @type {unknown} */ (null));
  #typingText = /** @type {HTMLElement} */ (/** @type {unknown} */ (null));
  #error = /** @type {HTMLElement} */ (/** @type {unknown} */ (null));
  #errorText = /** @type {HTMLElement} */ (/** @type {unknown} */ (null));
  #input = /** @type {HTMLTextAreaElement} */ (/** @type {unknown} */ (null));
  #send = /** @type {HTMLButtonElement} */ (/** @type {unknown} */ (null));
  #listButton = /** @type {HTMLButtonElement} */ (/** @type {unknown} */ (null));
  #stopButton = /** @type {HTMLButtonElement} */ (/** @type {unknown} */ (null));

  constructor() {
    super();
    this.#root = this.attachShadow({ mode: 'open' });
  }

  // ------------------------------------------------------------------------------------------
  // Public API
  // ------------------------------------------------------------------------------------------

  /** @returns {ParleyClient | null} the connection, once the element is in the document */
  get client() {
    return this.#client;
  }

  /** @returns {string | undefined} the conversation on screen */
  get conversationId() {
    return this.#conversationId;
  }

  /** Open the panel and put the cursor in the message box. */
  show() {
    this.setAttribute('open', '');
    if (this.#built) this.#input.focus();
  }

  /** Minimise the panel to the launcher. */
  hide() {
    this.removeAttribute('open');
  }

  /** Open or minimise the panel. */
  toggle() {
    this.toggleAttribute('open');
  }

  /**
   * Send a message as if the user typed it.
   *
   * @param {string} text
   * @returns {string | null} the client_msg_id, or null if nothing was sent
   */
  send(text) {
    const trimmed = text.trim();
    if (!trimmed || !this.#client) return null;
    this.#stopTyping();
    this.#pinnedNew = false;
    return this.#client.sendMessage(trimmed, {
      conversationId: this.#conversationId,
      context: this.#pageContext(),
      // Read by the client only when this message starts a conversation.
      profile: this.#profiles.chosen,
    });
  }

  /**
   * Offer the assistant a function of this page (see ParleyClient.registerTool).
   *
   * @param {string} name
   * @param {import('../client.js').PageToolOptions} options
   * @param {import('../client.js').PageToolHandler} handler
   * @returns {() => void} withdraws the tool
   */
  registerTool(name, options, handler) {
    const tool = {
      withdraw: () => {},
      attach(/** @type {ParleyClient} */ client) {
        tool.withdraw = client.registerTool(name, options, handler);
      },
    };
    this.#pageTools.set(name, tool);
    if (this.#client) tool.attach(this.#client);
    return () => {
      if (this.#pageTools.get(name) !== tool) return;
      this.#pageTools.delete(name);
      tool.withdraw();
    };
  }

  // ------------------------------------------------------------------------------------------
  // Custom element lifecycle
  // ------------------------------------------------------------------------------------------

  connectedCallback() {
    if (!this.#built) this.#build();
    this.#applyOpen();
    if (!this.hasAttribute('lazy') || this.hasAttribute('open')) this.#start();
  }

  disconnectedCallback() {
    this.#shutdown();
  }

  /**
   * @param {string} name
   * @param {string | null} oldValue
   * @param {string | null} newValue
   */
  attributeChangedCallback(name, oldValue, newValue) {
    if (!this.#built || oldValue === newValue) return;
    if (name === 'open') this.#applyOpen();
    else if (name === 'lang') this.#applyLanguage();
    else if (name === 'title' || name === 'suggestions' || name === 'profile') {
      // The header's profile line is left out when it would only repeat the title.
      if (name === 'title') this.#applyTitle();
      this.#scheduleRender();
    } else if (name === 'server' || name === 'token-url') {
      // A different server or identity: start over with a fresh connection and model.
      if (this.#client) {
        this.#shutdown();
        this.#resetView();
        this.#start();
      }
    }
  }

  // ------------------------------------------------------------------------------------------
  // Connection
  // ------------------------------------------------------------------------------------------

  #start() {
    if (this.#client || !this.isConnected) return;
    const server = this.#serverUrl();
    const source = this.#tokenSource();
    // Keep the token the socket got, so the status request needs no second token fetch.
    const getToken =
      source &&
      (async () => {
        this.#lastToken = await source();
        return this.#lastToken;
      });
    this.#conversations.rest = new RestApi({
      server: () => this.#serverUrl(),
      token: () => this.#lastToken,
      freshToken: getToken || undefined,
    });
    const client = new ParleyClient({
      url: new URL('ws', server).href,
      clientName: 'parley-widget/1',
      ...(getToken ? { getToken } : {}),
    });
    this.#client = client;
    for (const tool of this.#pageTools.values()) tool.attach(client);
    client.model.addEventListener('change', (event) => this.#onChange(detail(event)));
    client.addEventListener('state', (event) => this.#onState(detail(event).new));
    client.addEventListener('close', (event) => this.#onClose(detail(event)));
    client.addEventListener('error', (event) => this.#onError(detail(event)));
    client.addEventListener('ready', (event) => this.#onReady(detail(event)));
    client.addEventListener('message', (event) => this.#onMessage(detail(event)));
    client.connect();
    this.#onState(client.state);
  }

  #shutdown() {
    this.#stopTyping();
    this.#client?.close();
    this.#client = null;
    this.#lastToken = undefined;
    clearInterval(this.#countdownTimer);
    this.#countdownTimer = undefined;
    clearTimeout(this.#errorTimer);
  }

  /** @returns {URL} the server base URL, ending with a slash */
  #serverUrl() {
    const base = this.getAttribute('server') || globalThis.location.origin;
    const url = new URL(base, document.baseURI);
    if (!url.pathname.endsWith('/')) url.pathname += '/';
    return url;
  }

  /** @returns {(() => Promise<string> | string) | undefined} */
  #tokenSource() {
    if (this.getToken) return this.getToken;
    const tokenUrl = this.getAttribute('token-url');
    if (!tokenUrl) return undefined;
    return async () => {
      const response = await fetch(new URL(tokenUrl, document.baseURI), {
        credentials: 'same-origin',
        headers: { accept: 'application/json' },
      });
      if (!response.ok) throw new Error(`token request answered ${response.status}`);
      const body = await response.json();
      if (typeof body?.token !== 'string') throw new Error('token response has no token');
      return body.token;
    };
  }

  /**
   * Show the "development model" label when the server runs the scripted dev model. Asked once
   * the panel is open and the socket is ready, with the token the socket was accepted with (the
   * route answers authenticated callers only).
   */
  #fetchStatus() {
    if (this.#statusFetched || this.#client?.state !== 'connected') return;
    this.#statusFetched = true;
    /** @type {Record<string, string>} */
    const headers = { accept: 'application/json' };
    if (this.#lastToken !== undefined) headers.authorization = `Bearer ${this.#lastToken}`;
    fetch(new URL('api/v1/status', this.#serverUrl()), { headers })
      .then((response) => (response.ok ? response.json() : null))
      .then((status) => {
        const model = status?.model;
        if (model?.dev === true) {
          this.#devLabel.hidden = false;
          this.#devLabel.title = typeof model.name === 'string' ? model.name : '';
        }
      })
      .catch(() => {
        // No status route (or no server yet): show no label rather than a wrong one.
      });
  }

  /** @param {ConnectionState} state */
  #onState(state) {
    this.#stateLabel.dataset.state = state;
    this.#say(this.#stateLabel, `state.${state}`);
    if (state === 'connected') {
      this.#wasConnected = true;
      this.#banner.hidden = true;
    } else if (this.#wasConnected && this.#banner.dataset.kind !== 'failed') {
      this.#showBanner('reconnecting', this.#texts.t('banner.reconnecting'));
    }
    this.#scheduleRender();
  }

  /** @param {{code: number, reason: string, willReconnect: boolean}} close */
  #onClose(close) {
    if (close.willReconnect) {
      if (this.#wasConnected)
        this.#showBanner('reconnecting', this.#texts.t('banner.reconnecting'));
      else this.#showBanner('reconnecting', this.#texts.t('banner.connecting'));
      return;
    }
    this.#showBanner('failed', closeSentence(close.code, this.#texts.t));
  }

  /**
   * @param {'reconnecting' | 'failed'} kind
   * @param {string} text
   */
  #showBanner(kind, text) {
    this.#banner.dataset.kind = kind;
    this.#bannerText.textContent = text;
    this.#bannerRetry.hidden = kind !== 'failed';
    this.#banner.hidden = false;
  }

  /** @param {ErrorFrame} error */
  #onError(error) {
    // A token_expired the client repairs itself (it has a token source) is not the user's problem.
    if (error.code === 'token_expired' && this.#tokenSource()) return;
    // Errors about a message are shown next to that message.
    if (error.ref && this.#client?.model.pending.has(error.ref)) return;
    if (error.ref && this.#deciding.has(error.ref)) {
      this.#deciding.delete(error.ref);
      this.#scheduleRender();
    }
    // Edited params the server refused: the card says which field, and stays open for a fix.
    const card = error.ref ? this.#client?.model.confirmations.get(error.ref) : undefined;
    if (error.code === 'invalid_params' && error.ref && card) {
      this.#cardErrors.set(error.ref, error.message);
      this.#editing.add(error.ref);
      this.#scheduleRender();
      return;
    }
    this.#showError(errorSentence(error, this.#texts.t));
  }

  /** @param {string | null} sentence */
  #showError(sentence) {
    if (!sentence) return;
    this.#errorText.textContent = sentence;
    this.#error.hidden = false;
    clearTimeout(this.#errorTimer);
    this.#errorTimer = setTimeout(() => (this.#error.hidden = true), ERROR_VISIBLE_MS);
  }

  /** @param {ReadyFrame} ready */
  #onReady(ready) {
    this.#banner.hidden = true;
    delete this.#banner.dataset.kind;
    if (this.hasAttribute('open')) this.#fetchStatus();
    this.#userLocale = usableLocale(ready.locale);
    this.#applyLanguage();
    this.#conversations.snapshot(ready);
    if (this.#conversationId !== undefined) this.#conversations.shown(this.#conversationId);
    if (this.#conversationId !== undefined || this.#pinnedNew) return;
    // After a reload, continue the most recently active conversation.
    let latest;
    for (const summary of ready.conversations ?? []) {
      if (summary.status === 'archived') continue;
      if (!latest || summary.updated_at > latest.updated_at) latest = summary;
    }
    if (latest) this.#switchTo(latest.conversation_id);
  }

  /** @param {MessageFrame} message */
  #onMessage(message) {
    // Follow the conversation the user writes in, from this tab or another, so tabs stay in
    // step; but not while they are looking at a new, still empty conversation.
    if (message.role === 'user' && !this.#pinnedNew) this.#switchTo(message.conversation_id);
  }

  /** @param {string | undefined} conversationId */
  #switchTo(conversationId) {
    if (this.#conversationId === conversationId) return;
    this.#stopTyping();
    this.#conversationId = conversationId;
    if (conversationId !== undefined) this.#conversations.shown(conversationId);
    this.#scheduleRender();
  }

  /** @param {ChangeDetail} change */
  #onChange(change) {
    this.#conversations.noticed(change);
    this.#scheduleRender();
  }

  #resetView() {
    this.#conversationId = undefined;
    this.#pinnedNew = false;
    this.#wasConnected = false;
    this.#deciding.clear();
    this.#ratings.clear();
    this.#editing.clear();
    this.#cardErrors.clear();
    this.#userLocale = undefined;
    this.#conversations.reset();
    this.#banner.hidden = true;
    delete this.#banner.dataset.kind;
    this.#statusFetched = false;
    this.#devLabel.hidden = true;
    this.#profiles.reset();
    this.#scheduleRender();
  }

  /** @returns {Record<string, unknown> | undefined} */
  #pageContext() {
    const context = typeof this.context === 'function' ? this.context() : this.context;
    return context && typeof context === 'object' ? context : undefined;
  }

  // ------------------------------------------------------------------------------------------
  // Building the static DOM
  // ------------------------------------------------------------------------------------------

  #build() {
    this.#built = true;
    const style = h('style');
    style.textContent = WIDGET_STYLE;

    this.#badge = h('span', { class: 'badge', 'data-testid': 'badge', 'aria-hidden': 'true' });
    this.#badge.hidden = true;
    this.#launcher = h(
      'button',
      {
        class: 'launcher',
        part: 'launcher',
        type: 'button',
        'data-testid': 'launcher',
        'aria-expanded': 'false',
        'aria-controls': 'parley-panel',
      },
      [icon('chat'), this.#badge],
    );
    this.#launcher.addEventListener('click', () => this.show());

    this.#heading = h('h2', { id: 'parley-heading' });
    this.#stateLabel = h('span', {
      class: 'state',
      'data-testid': 'connection-state',
      'data-state': 'disconnected',
    });
    this.#say(this.#stateLabel, 'state.disconnected');
    this.#devLabel = this.#say(
      h('span', { class: 'dev-label', 'data-testid': 'dev-label' }),
      'dev.label',
    );
    this.#devLabel.hidden = true;
    this.#listButton = h(
      'button',
      {
        class: 'icon-button',
        type: 'button',
        'data-testid': 'conversations',
        'aria-expanded': 'false',
      },
      [icon('list')],
    );
    this.#say(this.#listButton, 'conversations.show', 'aria-label', 'title');
    this.#listButton.addEventListener('click', () => {
      this.#conversations.list.open = !this.#conversations.list.open;
      this.#scheduleRender();
    });
    const newButton = h(
      'button',
      { class: 'icon-button', type: 'button', 'data-testid': 'new-conversation' },
      [icon('plus')],
    );
    this.#say(newButton, 'header.new', 'aria-label', 'title');
    newButton.addEventListener('click', () => this.#newConversation());
    const minimise = h(
      'button',
      { class: 'icon-button', type: 'button', 'data-testid': 'minimise' },
      [icon('minimise')],
    );
    this.#say(minimise, 'header.minimise', 'aria-label');
    this.#say(minimise, 'header.minimise.short', 'title');
    minimise.addEventListener('click', () => this.#close());
    const header = h('header', { part: 'header' }, [
      h('div', { class: 'heading' }, [
        this.#heading,
        h('div', { class: 'sub' }, [this.#profiles.label, this.#stateLabel, this.#devLabel]),
      ]),
      this.#listButton,
      newButton,
      minimise,
    ]);

    this.#bannerText = h('span');
    this.#bannerRetry = this.#say(
      h('button', { type: 'button', 'data-testid': 'reconnect' }),
      'banner.retry',
    );
    this.#bannerRetry.addEventListener('click', () => {
      this.#banner.hidden = true;
      delete this.#banner.dataset.kind;
      this.#client?.connect();
    });
    this.#banner = h('div', { class: 'banner', 'data-testid': 'banner', role: 'status' }, [
      this.#bannerText,
      this.#bannerRetry,
    ]);
    this.#banner.hidden = true;

    this.#log = h(
      'div',
      {
        class: 'log',
        'data-testid': 'message-list',
        role: 'log',
        'aria-live': 'polite',
        'aria-relevant': 'additions text',
        tabindex: '0',
      },
      [this.#profiles.empty],
    );
    this.#say(this.#log, 'log.label', 'aria-label');
    this.#log.addEventListener('click', (event) => this.#onLogClick(event));

    this.#typingText = h('span');
    this.#typing = h('div', { class: 'typing', 'data-testid': 'typing', role: 'status' }, [
      h('span', { class: 'dots', 'aria-hidden': 'true' }, [h('span'), h('span'), h('span')]),
      this.#typingText,
    ]);
    this.#typing.hidden = true;

    this.#errorText = h('span');
    const dismiss = this.#say(
      h('button', { type: 'button' }, ['×']),
      'error.dismiss',
      'aria-label',
    );
    dismiss.addEventListener('click', () => (this.#error.hidden = true));
    this.#error = h('div', { class: 'error', 'data-testid': 'error', role: 'alert' }, [
      this.#errorText,
      dismiss,
    ]);
    this.#error.hidden = true;

    this.#input = h('textarea', { 'data-testid': 'input', rows: '1', maxlength: '8000' });
    this.#say(this.#input, 'input.label', 'aria-label');
    this.#say(this.#input, 'input.placeholder', 'placeholder');
    this.#input.addEventListener('keydown', (event) => this.#onKeydown(event));
    this.#input.addEventListener('input', () => this.#onInput());
    this.#stopButton = h('button', { class: 'stop', type: 'button', 'data-testid': 'stop' });
    this.#say(this.#stopButton, 'stop.label', 'aria-label');
    this.#say(this.#stopButton, 'stop.text');
    this.#stopButton.hidden = true;
    this.#stopButton.addEventListener('click', () => this.#cancelTurn());
    this.#send = h('button', { class: 'send', type: 'submit', 'data-testid': 'send' });
    this.#say(this.#send, 'send.label', 'aria-label');
    this.#say(this.#send, 'send.text');
    const form = h('form', {}, [this.#input, this.#stopButton, this.#send]);
    this.#say(form, 'form.label', 'aria-label');
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      this.#submit();
    });

    this.#panel = h(
      'section',
      {
        class: 'panel',
        part: 'panel',
        id: 'parley-panel',
        'data-testid': 'panel',
        role: 'dialog',
        'aria-labelledby': 'parley-heading',
        // An empty title stops the host's `title` attribute from showing as a tooltip everywhere.
        title: '',
      },
      [
        header,
        this.#banner,
        this.#conversations.escalation.node,
        this.#conversations.list.node,
        this.#profiles.bar,
        this.#log,
        this.#typing,
        this.#error,
        form,
      ],
    );
    this.#panel.hidden = true;
    this.#panel.addEventListener('keydown', (event) => {
      if (event.key === 'Escape') {
        event.stopPropagation();
        this.#close();
      }
    });

    this.#root.append(style, this.#launcher, this.#panel);
    this.#applyLanguage();
  }

  #applyTitle() {
    const title = this.getAttribute('title') || this.#texts.t('title.default');
    this.#heading.textContent = title;
    const open = this.#texts.t('launcher.open', { title });
    this.#launcher.setAttribute('aria-label', open);
    this.#launcher.title = open;
  }

  /**
   * @template {Element} E
   * @param {E} element
   * @param {string} id
   * @param {...string} attributes
   * @returns {E}
   */
  #say(element, id, ...attributes) {
    return this.#texts.say(element, id, ...attributes);
  }

  /**
   * Speak the language the `lang` attribute or the user's locale asks for, and draw numbers and
   * dates in the locale: static texts are set again, transcript items drawn afresh.
   */
  #applyLanguage() {
    if (!this.#built) return;
    const language = pickLanguage(this.getAttribute('lang'), this.#userLocale);
    const drawnIn = `${language}|${this.#locale() ?? ''}`;
    if (drawnIn === this.#drawnIn) return;
    this.#drawnIn = drawnIn;
    this.#texts.retranslate(translator(language));
    this.#applyTitle();
    // Items hold their words and formatted values: draw them again in the new language.
    for (const node of this.#nodes.values()) {
      node.remove();
      this.#items.dispose(node);
    }
    this.#nodes.clear();
    this.#conversations.list.invalidate();
    this.#render();
  }

  #applyOpen() {
    const open = this.hasAttribute('open');
    this.#panel.hidden = !open;
    this.#launcher.hidden = open;
    this.#launcher.setAttribute('aria-expanded', String(open));
    if (open) {
      this.#start();
      this.#fetchStatus();
      this.#scheduleRender();
    }
  }

  #close() {
    this.hide();
    this.#launcher.focus();
  }

  /** @returns {string[]} the `suggestions` attribute's prompts */
  #attributeSuggestions() {
    return (this.getAttribute('suggestions') ?? '')
      .split('|')
      .map((s) => s.trim())
      .filter(Boolean);
  }

  // ------------------------------------------------------------------------------------------
  // Input
  // ------------------------------------------------------------------------------------------

  /** @param {KeyboardEvent} event */
  #onKeydown(event) {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      this.#submit();
    }
  }

  #submit() {
    const text = this.#input.value;
    if (!text.trim()) return;
    if (this.send(text) !== null) {
      this.#input.value = '';
      this.#autosize();
      this.#error.hidden = true;
    }
  }

  #onInput() {
    this.#autosize();
    const conversationId = this.#conversationId;
    const client = this.#client;
    if (!client || conversationId === undefined) return;
    if (this.#input.value.trim() === '') {
      this.#stopTyping();
      return;
    }
    // Tell other tabs once when typing starts, and again that it stopped after a pause.
    if (this.#typingIn !== conversationId) {
      this.#stopTyping();
      this.#typingIn = conversationId;
      client.typing(conversationId, true);
    }
    clearTimeout(this.#typingTimer);
    this.#typingTimer = setTimeout(() => this.#stopTyping(), TYPING_IDLE_MS);
  }

  #stopTyping() {
    clearTimeout(this.#typingTimer);
    this.#typingTimer = undefined;
    if (this.#typingIn !== undefined) {
      this.#client?.typing(this.#typingIn, false);
      this.#typingIn = undefined;
    }
  }

  #autosize() {
    this.#input.style.height = 'auto';
    this.#input.style.height = `${Math.min(this.#input.scrollHeight, 140)}px`;
  }

  #cancelTurn() {
    const client = this.#client;
    const turn = client?.model.activeTurn(this.#conversationId);
    if (!client || !turn) return;
    client.cancel(turn.conversationId, turn.turnId);
    this.#stopButton.disabled = true;
  }

  #newConversation() {
    this.#pinnedNew = true;
    this.#switchTo(undefined);
    this.#input.focus();
  }

  /** One delegated listener for every button inside rendered items. @param {Event} event */
  #onLogClick(event) {
    const target = /** @type {HTMLElement | null} */ (event.target);
    const button = target?.closest('button');
    const client = this.#client;
    if (!button || !client) return;
    const action = button.dataset.action;
    const id = button.dataset.id ?? '';
    if (action === 'approve' || action === 'reject') {
      this.#decide(id, action, button);
    } else if (action === 'edit') {
      if (this.#editing.has(id)) this.#editing.delete(id);
      else this.#editing.add(id);
      this.#scheduleRender();
    } else if (action === 'up' || action === 'down') {
      if (client.feedback(id, action)) {
        this.#ratings.set(id, action);
        this.#scheduleRender();
      }
    } else if (action === 'retry') {
      // A message that starts a conversation goes again with the profile chosen now, so a
      // user refused one assistant can pick another and retry.
      const startsConversation = !client.model.pending.get(id)?.conversationId;
      client.retryMessage(id, startsConversation ? { profile: this.#profiles.chosen ?? null } : {});
    } else if (action === 'discard') {
      client.model.removePending(id);
    } else if (action === 'export') {
      this.#download(id, button);
    }
  }

  /**
   * Send a card's decision; an approval carries the edited params when the user changed any,
   * after checking them here, so a plain mistake is named on the card before anything is sent.
   *
   * @param {string} token
   * @param {'approve' | 'reject'} decision
   * @param {HTMLElement} button
   */
  #decide(token, decision, button) {
    const client = this.#client;
    const item = client?.model.confirmations.get(token);
    if (!client || !item) return;
    /** @type {Record<string, unknown> | null} */
    let params = null;
    if (decision === 'approve' && this.#editing.has(token)) {
      const card = /** @type {HTMLElement} */ (button.closest('[data-testid="confirm-card"]'));
      const read = this.#items.readEdits(card);
      if ('problem' in read) {
        this.#cardErrors.set(token, read.problem);
        this.#scheduleRender();
        return;
      }
      params = changedParams(item.params ?? {}, read.edits);
    }
    if (client.confirm(token, decision, params ?? undefined)) {
      this.#cardErrors.delete(token);
      this.#deciding.set(token, decision);
      this.#scheduleRender();
    }
  }

  /**
   * Download a view's CSV with the socket's token; the button says so meanwhile.
   *
   * @param {string} path the `tool_result.export` path
   * @param {HTMLButtonElement} button
   */
  async #download(path, button) {
    const url = exportUrl(path, this.#serverUrl());
    if (!url) return;
    const label = button.textContent;
    button.disabled = true;
    button.textContent = this.#texts.t('download.busy');
    try {
      const freshToken = this.#tokenSource();
      this.#lastToken = await downloadWithToken(url, {
        token: this.#lastToken,
        ...(freshToken ? { freshToken } : {}),
        container: this.#root,
      });
    } catch {
      this.#onError({
        type: 'error',
        code: 'export_failed',
        message: 'export failed',
        retryable: true,
      });
    } finally {
      button.disabled = false;
      button.textContent = label;
    }
  }

  /** @returns {string | undefined} the locale of views and cards */
  #locale() {
    return (
      usableLocale(this.getAttribute('lang')) ??
      this.#userLocale ??
      usableLocale(document.documentElement.lang) ??
      usableLocale(globalThis.navigator?.language)
    );
  }

  // ------------------------------------------------------------------------------------------
  // Rendering
  // ------------------------------------------------------------------------------------------

  #scheduleRender() {
    if (this.#renderQueued) return;
    this.#renderQueued = true;
    const run = () => {
      this.#renderQueued = false;
      this.#render();
    };
    // One render per frame however many deltas arrive; a hidden tab still renders via timeout.
    if (typeof requestAnimationFrame === 'function' && document.visibilityState === 'visible') {
      requestAnimationFrame(run);
    } else {
      setTimeout(run, 16);
    }
  }

  #render() {
    const client = this.#client;
    const model = client?.model;
    const conversationId = this.#conversationId;
    const conversation =
      conversationId !== undefined ? model?.conversation(conversationId) : undefined;
    // Messages not yet acknowledged come last: they are the newest.
    /** @type {ConversationItem[]} */
    const items = [...(conversation?.items ?? []), ...(model?.pendingFor(conversationId) ?? [])];

    const log = this.#log;
    const nearBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 48;
    /** @type {Set<string>} */
    const wanted = new Set();
    this.#profiles.update({
      profiles: model?.profiles ?? [],
      attribute: this.getAttribute('profile'),
      fallbackSuggestions: this.#attributeSuggestions(),
      isNew: conversationId === undefined,
      conversationProfile: conversation?.profile,
      heading: this.#heading.textContent ?? '',
      t: this.#texts.t,
    });
    this.#conversations.update({
      connected: client?.state === 'connected',
      listButton: this.#listButton,
    });
    this.#profiles.empty.hidden = items.length > 0;
    // The log holds the empty state first, then one node per item in model order.
    items.forEach((item, index) => {
      const key = itemKey(item);
      wanted.add(key);
      let node = this.#nodes.get(key);
      if (!node) {
        node = this.#items.create(item);
        this.#nodes.set(key, node);
      }
      this.#items.update(node, item);
      const at = log.children[index + 1];
      if (at !== node) log.insertBefore(node, at ?? null);
    });
    for (const [key, node] of this.#nodes) {
      if (!wanted.has(key)) {
        node.remove();
        this.#nodes.delete(key);
        this.#items.dispose(node);
      }
    }
    if (nearBottom) log.scrollTop = log.scrollHeight;

    // Typing indicator, Stop button and the launcher badge.
    const turn = model?.activeTurn(conversationId);
    const streamed = turn?.messageId !== undefined ? model?.message(turn.messageId)?.text : '';
    // A turn held by a confirmation card is waiting for the user, not working: say so.
    const awaitingDecision =
      turn !== undefined &&
      [...(model?.confirmations.values() ?? [])].some(
        (confirmation) => confirmation.turnId === turn.turnId && confirmation.status === 'pending',
      );
    this.#typing.toggleAttribute('data-waiting', awaitingDecision);
    // While text streams the growing answer is the indicator; `thinking` brings it back.
    if (awaitingDecision) {
      this.#typing.hidden = false;
      this.#typingText.textContent = this.#texts.t('typing.waiting');
    } else if (turn && (!streamed || turn.status)) {
      this.#typing.hidden = false;
      this.#typingText.textContent = turn.status
        ? withEllipsis(turn.status)
        : this.#texts.t('typing.thinking');
    } else if (!turn && conversation?.otherTabTyping) {
      this.#typing.hidden = false;
      this.#typingText.textContent = this.#texts.t('typing.otherTab');
    } else {
      this.#typing.hidden = true;
    }
    log.setAttribute('aria-busy', String(Boolean(turn)));
    this.#stopButton.hidden = !turn;
    if (!turn) this.#stopButton.disabled = false;

    let pending = 0;
    for (const confirmation of model?.confirmations.values() ?? []) {
      if (confirmation.status === 'pending') pending += 1;
    }
    this.#badge.hidden = pending === 0;
    this.#badge.textContent = String(pending);
    this.#syncCountdown();
  }

  /** Tick the countdowns once a second while a pending card is on screen. */
  #syncCountdown() {
    const hasPending = [...this.#nodes.values()].some(
      (node) => node.dataset.testid === 'confirm-card' && node.dataset.status === 'pending',
    );
    if (hasPending && this.#countdownTimer === undefined) {
      this.#countdownTimer = setInterval(() => this.#tickCountdowns(), 1000);
    } else if (!hasPending && this.#countdownTimer !== undefined) {
      clearInterval(this.#countdownTimer);
      this.#countdownTimer = undefined;
    }
  }

  #tickCountdowns() {
    const model = this.#client?.model;
    if (!model) return;
    for (const [key, node] of this.#nodes) {
      if (!key.startsWith('confirmation:')) continue;
      const item = model.confirmations.get(key.slice('confirmation:'.length));
      if (item) this.#items.update(node, item);
    }
  }
}

/**
 * A stable key per rendered item. A pending message is keyed by its client_msg_id and a
 * confirmed one by its message_id, so the acknowledged copy replaces the pending node.
 *
 * @param {ConversationItem} item
 * @returns {string}
 */
function itemKey(item) {
  if (item.kind === 'message' && (item.status === 'pending' || item.status === 'failed')) {
    return `pending:${item.id}`;
  }
  return `${item.kind}:${item.id}`;
}

/**
 * `looking up invoices` → `looking up invoices…`, keeping text that already ends in punctuation.
 *
 * @param {string} status
 * @returns {string}
 */
function withEllipsis(status) {
  return /[.…!?]$/.test(status) ? status : `${status}…`;
}

/**
 * @param {Event} event
 * @returns {any}
 */
function detail(event) {
  return /** @type {CustomEvent} */ (event).detail;
}

if (typeof customElements !== 'undefined' && !customElements.get('parley-assistant')) {
  customElements.define('parley-assistant', ParleyAssistant);
}
