/**
 * The client's picture of the user's conversations, built from server frames.
 *
 * A UI renders from this model and re-renders on its `change` event instead of interpreting
 * frames itself. The model is rebuilt from a `ready` snapshot when the server could not resume
 * (`resumed: false`) and is otherwise updated frame by frame; the client has already dropped
 * duplicate frames by `seq`, but every update here is still idempotent, so a frame applied twice
 * (say, a replayed `message` the snapshot already held) leaves the model unchanged.
 *
 * @module model
 */

/** @typedef {import('./types.js').ServerFrame} ServerFrame */
/** @typedef {import('./types.js').ReadyFrame} ReadyFrame */
/** @typedef {import('./types.js').UserMessageFrame} UserMessageFrame */
/** @typedef {import('./types.js').ErrorFrame} ErrorFrame */
/** @typedef {import('./types.js').UserInfo} UserInfo */
/** @typedef {import('./types.js').Conversation} Conversation */
/** @typedef {import('./types.js').ConversationItem} ConversationItem */
/** @typedef {import('./types.js').MessageItem} MessageItem */
/** @typedef {import('./types.js').ToolItem} ToolItem */
/** @typedef {import('./types.js').NoteItem} NoteItem */
/** @typedef {import('./types.js').ToolLine} ToolLine */
/** @typedef {import('./types.js').ProfileSummary} ProfileSummary */
/** @typedef {import('./types.js').ConversationSummary} ConversationSummary */
/** @typedef {import('./types.js').MessageSnapshot} MessageSnapshot */
/** @typedef {import('./types.js').ConfirmationItem} ConfirmationItem */
/** @typedef {import('./types.js').PendingConfirmation} PendingConfirmation */
/** @typedef {import('./types.js').Turn} Turn */
/** @typedef {import('./types.js').ChangeDetail} ChangeDetail */

/**
 * Stored message statuses (from a `ready` snapshot) as model statuses. A finished message reads
 * `sent` for the user and `complete` for the assistant; anything unknown counts as finished.
 * A message stored as `streaming` is only still streaming if its turn is among the snapshot's
 * `active_turns` (which mark it so again); otherwise the process writing it is gone, and showing
 * it as streaming would leave a cursor blinking on screen forever.
 *
 * @type {Record<string, MessageItem['status']>}
 */
const SNAPSHOT_STATUS = {
  streaming: 'interrupted',
  cancelled: 'cancelled',
  failed: 'interrupted',
  interrupted: 'interrupted',
};

/** How a turn's end leaves the assistant message it was streaming. */
const MESSAGE_STATUS_AFTER_TURN = /** @type {const} */ ({
  completed: 'complete',
  cancelled: 'cancelled',
  failed: 'interrupted',
  interrupted: 'interrupted',
});

/**
 * Conversations, running turns, confirmations and not yet acknowledged user messages.
 *
 * Fires `change` (a CustomEvent whose detail is a {@link ChangeDetail}) after every update.
 */
export class ConversationModel extends EventTarget {
  /** @type {UserInfo | null} the authenticated user, from `ready` */
  user = null;
  /** @type {string | null} */
  connectionId = null;
  /** @type {Map<string, Conversation>} by conversation_id, in the order they became known */
  conversations = new Map();
  /** @type {Map<string, Turn>} running turns by turn_id */
  turns = new Map();
  /** @type {Map<string, ConfirmationItem>} every confirmation seen, by token */
  confirmations = new Map();
  /** @type {Map<string, MessageItem>} user messages sent but not yet mirrored back, by client_msg_id */
  pending = new Map();
  /** @type {ProfileSummary[]} the profiles the user may start a conversation with, from `ready` */
  profiles = [];

  /** @type {Map<string, MessageItem>} */
  #messages = new Map();
  /** @type {Map<string, ToolItem>} */
  #tools = new Map();
  /** @type {Map<string, NoteItem>} */
  #notes = new Map();
  /** numbers the notes of frames that came without a seq */
  #unnumberedNotes = 0;

  // ------------------------------------------------------------------------------------------
  // Queries
  // ------------------------------------------------------------------------------------------

  /**
   * A conversation by id.
   *
   * @param {string} conversationId
   * @returns {Conversation | undefined}
   */
  conversation(conversationId) {
    return this.conversations.get(conversationId);
  }

  /**
   * The running turn of a conversation, if any (there is at most one per conversation).
   *
   * @param {string | undefined} conversationId
   * @returns {Turn | undefined}
   */
  activeTurn(conversationId) {
    for (const turn of this.turns.values()) {
      if (turn.conversationId === conversationId) return turn;
    }
    return undefined;
  }

  /**
   * Pending (unacknowledged or failed) user messages of a conversation; `undefined` selects the
   * ones sent without a conversation id, which start a new conversation.
   *
   * @param {string | undefined} conversationId
   * @returns {MessageItem[]}
   */
  pendingFor(conversationId) {
    return [...this.pending.values()].filter(
      (item) => (item.conversationId || undefined) === conversationId,
    );
  }

  /**
   * An assistant or user message by message_id.
   *
   * @param {string} messageId
   * @returns {MessageItem | undefined}
   */
  message(messageId) {
    return this.#messages.get(messageId);
  }

  /**
   * A profile the user may start a conversation with, by id.
   *
   * @param {string | undefined} profileId
   * @returns {ProfileSummary | undefined}
   */
  profile(profileId) {
    return profileId === undefined ? undefined : this.profiles.find((p) => p.id === profileId);
  }

  /** @returns {ProfileSummary | undefined} the profile a conversation gets when it names none */
  get defaultProfile() {
    return this.profiles.find((p) => p.default === true) ?? this.profiles[0];
  }

  // ------------------------------------------------------------------------------------------
  // Local updates made by the client
  // ------------------------------------------------------------------------------------------

  /**
   * Show a user message at once, before the server mirrors it back.
   *
   * @param {UserMessageFrame} frame
   */
  addPending(frame) {
    /** @type {MessageItem} */
    const item = {
      kind: 'message',
      id: frame.client_msg_id,
      conversationId: frame.conversation_id ?? '',
      role: 'user',
      text: frame.text,
      status: 'pending',
      clientMsgId: frame.client_msg_id,
    };
    if (frame.context) item.context = frame.context;
    if (frame.profile !== undefined) item.profile = frame.profile;
    this.pending.set(frame.client_msg_id, item);
    this.#changed('local', frame.conversation_id);
  }

  /**
   * Mark a pending user message as refused by the server (the error's `ref` named it).
   *
   * @param {string} clientMsgId
   * @param {ErrorFrame} error
   */
  failPending(clientMsgId, error) {
    const item = this.pending.get(clientMsgId);
    if (!item) return;
    item.status = 'failed';
    item.error = error;
    this.#changed('failed', item.conversationId || undefined);
  }

  /**
   * Put a failed message back to pending, for a retry with the same client_msg_id.
   *
   * @param {string} clientMsgId
   * @param {string} [profile] the profile the resent message asks for (none when undefined)
   */
  retryPending(clientMsgId, profile) {
    const item = this.pending.get(clientMsgId);
    if (!item) return;
    item.status = 'pending';
    delete item.error;
    if (profile === undefined) delete item.profile;
    else item.profile = profile;
    this.#changed('local', item.conversationId || undefined);
  }

  /**
   * Forget a pending message (the user discarded a failed one).
   *
   * @param {string} clientMsgId
   */
  removePending(clientMsgId) {
    const item = this.pending.get(clientMsgId);
    if (this.pending.delete(clientMsgId)) this.#changed('local', item?.conversationId || undefined);
  }

  // ------------------------------------------------------------------------------------------
  // Snapshots
  // ------------------------------------------------------------------------------------------

  /**
   * Rebuild everything the server knows from a `ready` snapshot (after `resumed: false`).
   * Pending user messages are the client's own and survive: they will be resent.
   *
   * @param {ReadyFrame} ready
   */
  reset(ready) {
    this.user = ready.user;
    this.connectionId = ready.connection_id;
    this.profiles = ready.profiles ?? [];
    // The snapshot holds messages, notes and the tool lines of finished answers, not those of
    // running turns: keep the ones already seen (notes of conversations whose messages the
    // snapshot leaves out included).
    const toolsSeen = [...this.#tools.values()];
    const notesSeen = [...this.#notes.values()];
    this.conversations = new Map();
    this.turns = new Map();
    this.confirmations = new Map();
    this.#messages = new Map();
    this.#tools = new Map();
    this.#notes = new Map();
    for (const summary of ready.conversations ?? []) this.#applySummary(summary);
    /** @type {NoteItem[]} */
    const storedNotes = [];
    for (const snapshot of ready.messages ?? []) {
      if (snapshot.role === 'note') {
        /** @type {NoteItem} */
        const note = {
          kind: 'note',
          id: `stored-${snapshot.message_id}`,
          conversationId: snapshot.conversation_id,
          text: snapshot.text,
        };
        if (snapshot.turn_id !== undefined) note.turnId = snapshot.turn_id;
        storedNotes.push(note);
        continue;
      }
      // Tool messages are the model's working material; the UI shows tool progress lines instead.
      if (snapshot.role !== 'user' && snapshot.role !== 'assistant') continue;
      const finished = snapshot.role === 'user' ? 'sent' : 'complete';
      const status = SNAPSHOT_STATUS[snapshot.status] ?? finished;
      /** @type {MessageItem} */
      const item = {
        kind: 'message',
        id: snapshot.message_id,
        conversationId: snapshot.conversation_id,
        role: snapshot.role,
        text: snapshot.text,
        status,
      };
      if (snapshot.client_msg_id !== undefined) item.clientMsgId = snapshot.client_msg_id;
      if (snapshot.turn_id !== undefined) item.turnId = snapshot.turn_id;
      if (snapshot.citations !== undefined) item.citations = snapshot.citations;
      // The turn's tool lines go before its answer, where the live frames put them.
      if (snapshot.tools !== undefined && snapshot.turn_id !== undefined) {
        this.#addStoredTools(snapshot.conversation_id, snapshot.turn_id, snapshot.tools);
      }
      this.#addMessage(item);
      if (snapshot.client_msg_id !== undefined) this.pending.delete(snapshot.client_msg_id);
    }
    for (const turn of ready.active_turns ?? []) {
      this.turns.set(turn.turn_id, {
        turnId: turn.turn_id,
        conversationId: turn.conversation_id,
        status: turn.status,
        messageId: turn.message_id,
      });
      const message = this.#ensureAssistantMessage(
        turn.conversation_id,
        turn.turn_id,
        turn.message_id,
      );
      message.text = turn.text;
      message.status = 'streaming';
    }
    for (const pending of ready.pending_confirmations ?? []) this.#addConfirmation(pending);
    this.#restoreTools(toolsSeen);
    this.#placeNotes(storedNotes);
    // A note seen live that the snapshot holds too is shown once, as the snapshot has it.
    const stored = new Set(storedNotes.map(noteKey));
    this.#restoreNotes(notesSeen.filter((note) => !stored.has(noteKey(note))));
    this.#changed('reset');
  }

  /**
   * Put a conversation's stored messages (say, from the REST history of a conversation the
   * snapshot left out) before what this tab has seen of it. Messages already known are left as
   * they are, so loading the history twice, or after live frames, changes nothing; one still
   * streaming is left to its turn's frames.
   *
   * @param {string} conversationId
   * @param {MessageSnapshot[]} snapshots oldest first
   */
  addHistory(conversationId, snapshots) {
    const conversation = this.#ensureConversation(conversationId);
    /** @type {(MessageItem | ToolItem)[]} */
    const older = [];
    for (const snapshot of snapshots) {
      if (snapshot.role !== 'user' && snapshot.role !== 'assistant') continue;
      if (this.#messages.has(snapshot.message_id)) continue;
      // A message still streaming belongs to a running turn, whose frames bring it.
      if (snapshot.status === 'streaming') continue;
      const finished = snapshot.role === 'user' ? 'sent' : 'complete';
      /** @type {MessageItem} */
      const item = {
        kind: 'message',
        id: snapshot.message_id,
        conversationId,
        role: snapshot.role,
        text: snapshot.text,
        status: SNAPSHOT_STATUS[snapshot.status] ?? finished,
      };
      if (snapshot.client_msg_id) item.clientMsgId = snapshot.client_msg_id;
      if (snapshot.turn_id) item.turnId = snapshot.turn_id;
      if (snapshot.citations) item.citations = snapshot.citations;
      // The answer's tool lines go before it, as in a snapshot.
      if (snapshot.tools !== undefined && snapshot.turn_id) {
        older.push(...this.#storedTools(conversationId, snapshot.turn_id, snapshot.tools));
      }
      this.#messages.set(item.id, item);
      older.push(item);
    }
    if (older.length === 0) return;
    conversation.items.unshift(...older);
    this.#changed('history', conversationId);
  }

  /**
   * Put notes (hand-offs) seen before a rebuild back into their conversations: before the
   * answer of the turn they arrived in when the snapshot holds it, else at the end. The
   * conversation's profile itself comes from the snapshot.
   *
   * @param {NoteItem[]} notes in the order they were first seen
   */
  #restoreNotes(notes) {
    for (const note of notes) {
      // Seq numbers start afresh under a new epoch: a kept note must not claim one.
      note.id = `kept-${++this.#unnumberedNotes}`;
    }
    this.#placeNotes(notes);
  }

  /**
   * Put notes into their conversations: before the answer of the turn they came from when
   * the transcript holds it, else at the end.
   *
   * @param {NoteItem[]} notes oldest first
   */
  #placeNotes(notes) {
    for (const note of notes) {
      const conversation = this.conversations.get(note.conversationId);
      if (!conversation) continue;
      this.#notes.set(note.id, note);
      const answer = conversation.items.findIndex(
        (item) =>
          note.turnId !== undefined &&
          item.kind === 'message' &&
          item.role === 'assistant' &&
          item.turnId === note.turnId,
      );
      if (answer < 0) conversation.items.push(note);
      else conversation.items.splice(answer, 0, note);
    }
  }

  /** @param {ConversationSummary} summary */
  #applySummary(summary) {
    const conversation = this.#ensureConversation(summary.conversation_id);
    conversation.title = summary.title;
    conversation.status = summary.status;
    conversation.updatedAt = summary.updated_at;
    if (summary.profile !== undefined) conversation.profile = summary.profile;
  }

  /**
   * Put tool lines seen before a rebuild back into the rebuilt transcript, each before its
   * turn's answer, when the snapshot still holds that turn (a message or a running turn).
   * Tool lines of turns the snapshot left out go with them.
   *
   * @param {ToolItem[]} tools in the order they were first seen
   */
  #restoreTools(tools) {
    for (const tool of tools) {
      // The snapshot's copy of a line seen live is shown instead (the same call id), once.
      const stored = this.#tools.get(tool.id);
      if (stored) {
        stored.arguments = tool.arguments;
        continue;
      }
      const conversation = this.conversations.get(tool.conversationId);
      if (!conversation) continue;
      const turnShown =
        this.turns.has(tool.turnId) ||
        conversation.items.some((item) => item.kind === 'message' && item.turnId === tool.turnId);
      if (!turnShown) continue;
      // Its turn ended while this tab was away without the result arriving here: as turn_end does.
      if (tool.status === 'running' && !this.turns.has(tool.turnId)) tool.status = 'failed';
      this.#tools.set(tool.id, tool);
      const answer = conversation.items.findIndex(
        (item) =>
          item.kind === 'message' && item.role === 'assistant' && item.turnId === tool.turnId,
      );
      if (answer < 0) conversation.items.push(tool);
      else conversation.items.splice(answer, 0, tool);
    }
  }

  /**
   * Add the tool lines a snapshot holds for a finished answer, as its `tool_result` frames
   * would have drawn them.
   *
   * @param {string} conversationId
   * @param {string} turnId
   * @param {ToolLine[]} lines in the order they ran
   */
  #addStoredTools(conversationId, turnId, lines) {
    const conversation = this.#ensureConversation(conversationId);
    conversation.items.push(...this.#storedTools(conversationId, turnId, lines));
  }

  /**
   * Tool items for stored tool lines this tab does not know yet (known from now on).
   *
   * @param {string} conversationId
   * @param {string} turnId
   * @param {ToolLine[]} lines in the order they ran
   * @returns {ToolItem[]}
   */
  #storedTools(conversationId, turnId, lines) {
    /** @type {ToolItem[]} */
    const made = [];
    for (const line of lines) {
      if (this.#tools.has(line.call_id)) continue;
      /** @type {ToolItem} */
      const tool = {
        kind: 'tool',
        id: line.call_id,
        conversationId,
        turnId,
        name: line.name,
        arguments: {},
        status: line.ok ? 'ok' : 'failed',
        summary: line.summary,
      };
      if (line.view !== undefined) tool.view = line.view;
      if (line.export !== undefined) tool.export = line.export;
      this.#tools.set(tool.id, tool);
      made.push(tool);
    }
    return made;
  }

  /**
   * Take what a resumed `ready` adds (who we are, conversation titles) without dropping the
   * transcript: the frames missed while away are replayed right after it.
   *
   * @param {ReadyFrame} ready
   */
  refresh(ready) {
    this.user = ready.user;
    this.connectionId = ready.connection_id;
    if (ready.profiles !== undefined) this.profiles = ready.profiles;
    for (const summary of ready.conversations ?? []) this.#applySummary(summary);
    this.#changed('ready');
  }

  // ------------------------------------------------------------------------------------------
  // Frames
  // ------------------------------------------------------------------------------------------

  /**
   * Apply one server frame; fires `change` when the model changed.
   *
   * @param {ServerFrame} frame
   * @returns {boolean} whether anything changed
   */
  apply(frame) {
    switch (frame.type) {
      case 'message': {
        const pending = this.pending.get(frame.client_msg_id);
        this.pending.delete(frame.client_msg_id);
        if (pending && !pending.conversationId && !this.conversations.has(frame.conversation_id)) {
          // Our own message started this conversation: it runs under the profile the message
          // asked for, or the default one when it named none (protocol.md, user_message.profile).
          const profile = pending.profile ?? this.defaultProfile?.id;
          if (profile !== undefined) {
            this.#ensureConversation(frame.conversation_id).profile = profile;
          }
        }
        if (!this.#messages.has(frame.message_id)) {
          /** @type {MessageItem} */
          const item = {
            kind: 'message',
            id: frame.message_id,
            conversationId: frame.conversation_id,
            role: frame.role,
            text: frame.text,
            status: frame.role === 'user' ? 'sent' : 'complete',
            clientMsgId: frame.client_msg_id,
          };
          if (pending?.context) item.context = pending.context;
          this.#addMessage(item);
        }
        break;
      }
      case 'thinking': {
        const turn = this.#ensureTurn(frame.conversation_id, frame.turn_id);
        turn.status = frame.status;
        break;
      }
      case 'tool_call': {
        this.#ensureTurn(frame.conversation_id, frame.turn_id);
        const tool = this.#ensureTool(
          frame.conversation_id,
          frame.turn_id,
          frame.call_id,
          frame.name,
        );
        tool.arguments = frame.arguments;
        break;
      }
      case 'tool_result': {
        const tool = this.#ensureTool(
          frame.conversation_id,
          frame.turn_id,
          frame.call_id,
          frame.name,
        );
        tool.status = frame.ok ? 'ok' : 'failed';
        tool.summary = frame.summary;
        // A view is part of the logged frame, so every tab and every replay sets the same one.
        if (frame.view !== undefined) tool.view = frame.view;
        if (frame.export !== undefined) tool.export = frame.export;
        break;
      }
      case 'response_delta': {
        const turn = this.#ensureTurn(frame.conversation_id, frame.turn_id);
        turn.messageId = frame.message_id;
        // Writing the answer is what it does now; a later `thinking` sets a new status.
        delete turn.status;
        const message = this.#ensureAssistantMessage(
          frame.conversation_id,
          frame.turn_id,
          frame.message_id,
        );
        message.text += frame.delta;
        break;
      }
      case 'response': {
        const message = this.#ensureAssistantMessage(
          frame.conversation_id,
          frame.turn_id,
          frame.message_id,
        );
        const turn = this.turns.get(frame.turn_id);
        if (turn) turn.messageId = frame.message_id;
        message.text = frame.text;
        message.status = 'complete';
        message.usage = frame.usage;
        if (frame.citations !== undefined) message.citations = frame.citations;
        break;
      }
      case 'confirm_request':
        this.#addConfirmation(frame);
        break;
      case 'confirm_resolved': {
        const confirmation = this.confirmations.get(frame.token);
        if (!confirmation) return false;
        confirmation.status = frame.status;
        // Edited values: every tab's card shows what was approved, not what was proposed.
        if (frame.params !== undefined) confirmation.params = frame.params;
        if (frame.summary !== undefined) confirmation.summary = frame.summary;
        break;
      }
      case 'action_executed': {
        const confirmation = this.confirmations.get(frame.token);
        if (!confirmation) return false;
        // The action only runs after approval; the outcome may overtake confirm_resolved.
        if (confirmation.status === 'pending') confirmation.status = 'approved';
        confirmation.outcome = { ok: frame.ok, result: frame.result, auditId: frame.audit_id };
        break;
      }
      case 'turn_end': {
        this.turns.delete(frame.turn_id);
        // Found by turn id, not through the Turn, so a turn this tab never saw start ends too.
        for (const message of this.#messages.values()) {
          if (message.turnId === frame.turn_id && message.status === 'streaming') {
            message.status = MESSAGE_STATUS_AFTER_TURN[frame.status] ?? 'complete';
            // Tabs on other workers see no error frame: turn_end says why it ended.
            if (frame.error) message.error = { type: 'error', ...frame.error };
          }
        }
        for (const tool of this.#tools.values()) {
          if (tool.turnId === frame.turn_id && tool.status === 'running') tool.status = 'failed';
        }
        break;
      }
      case 'typing':
        this.#ensureConversation(frame.conversation_id).otherTabTyping = frame.active;
        break;
      case 'conversation_updated': {
        const conversation = this.#ensureConversation(frame.conversation_id);
        conversation.status = frame.status;
        if (frame.title !== undefined) conversation.title = frame.title;
        if (frame.profile !== undefined) conversation.profile = frame.profile;
        if (frame.note !== undefined) this.#addNote(frame, frame.note);
        break;
      }
      default:
        return false;
    }
    this.#changed(frame.type, 'conversation_id' in frame ? frame.conversation_id : undefined);
    return true;
  }

  // ------------------------------------------------------------------------------------------
  // Helpers
  // ------------------------------------------------------------------------------------------

  /**
   * @param {string} conversationId
   * @returns {Conversation}
   */
  #ensureConversation(conversationId) {
    let conversation = this.conversations.get(conversationId);
    if (!conversation) {
      conversation = {
        id: conversationId,
        title: '',
        status: 'active',
        items: [],
        otherTabTyping: false,
      };
      this.conversations.set(conversationId, conversation);
    }
    return conversation;
  }

  /**
   * @param {string} conversationId
   * @param {string} turnId
   * @returns {Turn}
   */
  #ensureTurn(conversationId, turnId) {
    let turn = this.turns.get(turnId);
    if (!turn) {
      turn = { turnId, conversationId };
      this.turns.set(turnId, turn);
    }
    return turn;
  }

  /** @param {MessageItem} item */
  #addMessage(item) {
    this.#messages.set(item.id, item);
    this.#ensureConversation(item.conversationId).items.push(item);
  }

  /**
   * @param {string} conversationId
   * @param {string} turnId
   * @param {string} messageId
   * @returns {MessageItem}
   */
  #ensureAssistantMessage(conversationId, turnId, messageId) {
    let message = this.#messages.get(messageId);
    if (!message) {
      message = {
        kind: 'message',
        id: messageId,
        conversationId,
        role: 'assistant',
        text: '',
        status: 'streaming',
        turnId,
      };
      this.#addMessage(message);
    }
    return message;
  }

  /**
   * @param {string} conversationId
   * @param {string} turnId
   * @param {string} callId
   * @param {string} name
   * @returns {ToolItem}
   */
  #ensureTool(conversationId, turnId, callId, name) {
    let tool = this.#tools.get(callId);
    if (!tool) {
      tool = {
        kind: 'tool',
        id: callId,
        conversationId,
        turnId,
        name,
        arguments: {},
        status: 'running',
      };
      this.#tools.set(callId, tool);
      this.#ensureConversation(conversationId).items.push(tool);
    }
    return tool;
  }

  /**
   * A note in the transcript (a hand-off), once per logged frame: a frame applied twice keeps
   * its `seq`, so it adds nothing the second time.
   *
   * @param {import('./types.js').ConversationUpdatedFrame} frame
   * @param {string} text
   */
  #addNote(frame, text) {
    const id = frame.seq !== undefined ? `seq-${frame.seq}` : `local-${++this.#unnumberedNotes}`;
    if (this.#notes.has(id)) return;
    /** @type {NoteItem} */
    const note = { kind: 'note', id, conversationId: frame.conversation_id, text };
    if (frame.profile !== undefined) note.profile = frame.profile;
    const turn = this.activeTurn(frame.conversation_id);
    if (turn) note.turnId = turn.turnId;
    this.#notes.set(id, note);
    this.#ensureConversation(frame.conversation_id).items.push(note);
  }

  /** @param {PendingConfirmation} request */
  #addConfirmation(request) {
    const existing = this.confirmations.get(request.token);
    if (existing) return;
    /** @type {ConfirmationItem} */
    const item = {
      kind: 'confirmation',
      id: request.token,
      token: request.token,
      conversationId: request.conversation_id,
      turnId: request.turn_id,
      action: request.action,
      params: request.params,
      summary: request.summary,
      expiresAt: request.expires_at,
      status: 'pending',
    };
    if (request.fields !== undefined) item.fields = request.fields;
    if (request.source !== undefined) item.source = request.source;
    if (request.destructive !== undefined) item.destructive = request.destructive;
    this.confirmations.set(request.token, item);
    this.#ensureConversation(request.conversation_id).items.push(item);
  }

  /**
   * @param {string} reason
   * @param {string} [conversationId]
   */
  #changed(reason, conversationId) {
    /** @type {ChangeDetail} */
    const detail = { reason };
    if (conversationId) detail.conversationId = conversationId;
    this.dispatchEvent(new CustomEvent('change', { detail }));
  }
}

/**
 * What makes two notes the same note: a live one and the stored copy of it have different ids,
 * and the live one lacks the turn when its tab never saw that turn start.
 *
 * @param {NoteItem} note
 */
function noteKey(note) {
  return JSON.stringify([note.conversationId, note.text]);
}
