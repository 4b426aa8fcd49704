/**
 * A scripted stand-in for the Parley server inside the page, for widget tests in a real browser.
 * It replaces `window.WebSocket` before the widget loads (a classic script, so it runs first)
 * and is driven from the test through `window.parleyFake`.
 */
(() => {
  const LOGGED = new Set([
    'message',
    'thinking',
    'tool_call',
    'tool_result',
    'response_delta',
    'response',
    'confirm_request',
    'confirm_resolved',
    'action_executed',
    'turn_end',
    'typing',
    'conversation_updated',
  ]);
  const state = {
    sockets: [],
    sent: [],
    seq: 0,
    epoch: 'epoch-1',
    /** Answer hello with ready, mirror user messages, answer pings. */
    auto: true,
    /** Conversation a message without conversation_id starts. */
    newConversationId: 'c1',
    /**
     * Extra fields of the next ready frames (conversations, pending_confirmations, ...); a test
     * may set the first ones before the page loads, as `window.parleyFakeInit.snapshot`.
     */
    snapshot: window.parleyFakeInit?.snapshot ?? {},
  };

  class FakeWebSocket {
    constructor(url) {
      this.url = url;
      this.readyState = 0;
      this.onopen = this.onmessage = this.onclose = this.onerror = null;
      state.sockets.push(this);
      setTimeout(() => {
        this.readyState = 1;
        this.onopen?.({});
      }, 0);
    }

    send(text) {
      if (this.readyState !== 1) throw new Error('socket is not open');
      const frame = JSON.parse(text);
      state.sent.push(frame);
      if (!state.auto) return;
      if (frame.type === 'hello') {
        this.deliver({
          type: 'ready',
          protocol: 1,
          connection_id: `k${state.sockets.length}`,
          user: { id: 'alice', tenant: 'acme', roles: ['admin'], name: 'Alice' },
          epoch: state.epoch,
          last_seq: state.seq,
          resumed: frame.epoch === state.epoch,
          conversations: [],
          pending_confirmations: [],
          active_turns: [],
          ...state.snapshot,
        });
      } else if (frame.type === 'user_message') {
        window.parleyFake.emit({
          type: 'message',
          conversation_id: frame.conversation_id ?? state.newConversationId,
          message_id: `u-${frame.client_msg_id}`,
          client_msg_id: frame.client_msg_id,
          role: 'user',
          text: frame.text,
        });
      } else if (frame.type === 'ping') {
        this.deliver({ type: 'pong', t: frame.t });
      }
    }

    deliver(frame) {
      setTimeout(() => {
        if (this.readyState === 1) this.onmessage?.({ data: JSON.stringify(frame) });
      }, 0);
    }

    close(code = 1000, reason = '') {
      if (this.readyState === 3) return;
      this.readyState = 3;
      setTimeout(() => this.onclose?.({ code, reason }), 0);
    }
  }

  window.WebSocket = FakeWebSocket;
  window.parleyFake = {
    state,
    get socket() {
      return state.sockets[state.sockets.length - 1];
    },
    /** Send a frame from the server; logged types get the next seq. */
    emit(frame) {
      const numbered = LOGGED.has(frame.type) ? { seq: ++state.seq, ...frame } : frame;
      this.socket.deliver(numbered);
    },
    /** The server or the network closes the connection. */
    drop(code, reason = '') {
      const socket = this.socket;
      socket.readyState = 3;
      socket.onclose?.({ code, reason });
    },
    sent(type) {
      return state.sent.filter((frame) => type === undefined || frame.type === type);
    },
  };
})();
