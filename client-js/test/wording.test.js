import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  actionTitle,
  closeSentence,
  confirmSourceLine,
  confirmationResult,
  describeResult,
  errorSentence,
  fieldLabel,
  formatCountdown,
  humanize,
  messageErrorSentence,
  resultFields,
  toolLine,
} from '../widget/wording.js';

/** Error codes of protocol v1 (docs/protocol.md). */
const CODES = [
  'invalid_json',
  'invalid_frame',
  'unknown_type',
  'missing_field',
  'invalid_field',
  'frame_too_large',
  'hello_required',
  'unsupported_protocol',
  'unauthenticated',
  'token_expired',
  'forbidden',
  'conversation_not_found',
  'message_not_found',
  'confirmation_not_found',
  'confirmation_not_pending',
  'confirmation_expired',
  'profile_not_found',
  'turn_in_progress',
  'no_active_turn',
  'message_too_long',
  'conversation_full',
  'rate_limited',
  'too_many_connections',
  'flooding',
  'budget_exceeded',
  'budget_warning',
  'model_error',
  'model_unavailable',
  'model_rate_limited',
  'model_timeout',
  'stream_interrupted',
  'store_unavailable',
  'turn_interrupted',
  'tool_error',
  'internal_error',
];

test('every protocol error code has a plain sentence that hides the code', () => {
  for (const code of CODES) {
    const sentence = errorSentence({
      type: 'error',
      code,
      message: `raw ${code}`,
      retryable: false,
    });
    assert.ok(sentence && sentence.length > 10, code);
    assert.ok(!sentence.includes(code) && !sentence.includes('raw'), `${code}: ${sentence}`);
  }
});

test('unknown codes fall back by retryability; local protocol noise is silent', () => {
  assert.match(
    String(errorSentence({ type: 'error', code: 'new_code', message: '', retryable: true })),
    /try again/,
  );
  assert.equal(
    errorSentence({
      type: 'error',
      code: 'invalid_json',
      message: '',
      retryable: false,
      local: true,
    }),
    null,
  );
});

test('terminal close codes have sentences', () => {
  for (const code of [1008, 1009, 4400, 4401, 4403, 4426, 4999])
    assert.ok(closeSentence(code).length > 10);
});

test('tool lines and names read as words', () => {
  assert.equal(humanize('list_purchase_orders'), 'list purchase orders');
  assert.equal(fieldLabel('po_number'), 'PO number');
  assert.equal(fieldLabel('customer_id'), 'Customer ID');
  assert.equal(fieldLabel('decided_by'), 'Decided by');
  const tool = {
    kind: /** @type {const} */ ('tool'),
    id: 'k',
    conversationId: 'c',
    turnId: 't',
    name: 'cash_balance',
    arguments: {},
  };
  assert.equal(toolLine({ ...tool, status: 'running' }), 'Cash balance…');
  assert.equal(
    toolLine({ ...tool, status: 'ok', summary: '3 accounts' }),
    'Cash balance: 3 accounts',
  );
  assert.equal(
    toolLine({ ...tool, status: 'failed', summary: 'timeout' }),
    'Cash balance failed: timeout',
  );
  // A remote or page tool's source prefix is left out.
  assert.equal(toolLine({ ...tool, name: 'erp__cash_balance', status: 'ok' }), 'Cash balance: done');
  assert.equal(toolLine({ ...tool, name: 'page__open_record', status: 'running' }), 'Open record…');
});

test('decided confirmations say what happened', () => {
  const base = {
    kind: /** @type {const} */ ('confirmation'),
    id: 't',
    token: 't',
    conversationId: 'c',
    turnId: 'u',
    action: 'approve_purchase_order',
    params: {},
    summary: 's',
    expiresAt: '2026-01-01T00:00:00Z',
  };
  assert.equal(confirmationResult({ ...base, status: 'pending' }), null);
  assert.equal(
    confirmationResult({ ...base, status: 'rejected' })?.text,
    'Rejected. Nothing was done.',
  );
  assert.equal(confirmationResult({ ...base, status: 'expired' })?.tone, 'neutral');
  assert.equal(
    confirmationResult({
      ...base,
      status: 'approved',
      outcome: { ok: true, result: { message: 'PO-1001 approved' }, auditId: 'a' },
    })?.text,
    'Done: PO-1001 approved',
  );
  assert.equal(
    confirmationResult({
      ...base,
      status: 'approved',
      outcome: { ok: false, result: 'PO closed', auditId: 'a' },
    })?.tone,
    'bad',
  );
  assert.equal(describeResult({ id: 1 }), '', 'records are shown as fields');
  assert.ok(describeResult(['x'.repeat(500)]).length <= 160);
  assert.deepEqual(
    resultFields({
      number: 'PO-1002',
      status: 'approved',
      lines: [1],
      note: null,
      decided_by: 'alice',
      urgent: false,
    }),
    [
      ['Number', 'PO-1002'],
      ['Status', 'approved'],
      ['Decided by', 'alice'],
      ['Urgent', 'no'],
    ],
  );
  assert.deepEqual(resultFields({ message: 'done', a: 1 }), []);
  assert.deepEqual(resultFields('text'), []);
});

test('countdowns', () => {
  assert.equal(formatCountdown(272_000), '4:32');
  assert.equal(formatCountdown(1), '0:01');
  assert.equal(formatCountdown(0), null);
  assert.equal(formatCountdown(-5), null);
  assert.equal(formatCountdown(Number.NaN), null);
});

test('a refused profile is named under the message, and a lost one says to start anew', () => {
  /** @param {string} code */
  const error = (code) => ({ type: 'error', code, message: `raw ${code}`, retryable: false });
  assert.equal(
    messageErrorSentence(error('profile_not_found'), {
      profileTitle: 'ops',
      newConversation: true,
    }),
    "The assistant “ops” isn't available. Choose another one and send again.",
  );
  assert.equal(
    messageErrorSentence(error('forbidden'), {
      profileTitle: 'Ops copilot',
      newConversation: true,
    }),
    "You don't have access to the assistant “Ops copilot”. Choose another one and send again.",
  );
  assert.match(
    String(messageErrorSentence(error('forbidden'), { newConversation: false })),
    /no longer have access to this conversation's assistant/,
  );
  // Other codes read as everywhere else.
  assert.equal(
    messageErrorSentence(error('message_too_long')),
    errorSentence(error('message_too_long')),
  );
});

test('a card names the host app once: in its own line, not in the title', () => {
  assert.equal(actionTitle('erp__approve_purchase_order', 'erp'), 'Confirm: approve purchase order');
  assert.equal(actionTitle('approve_purchase_order', undefined), 'Confirm: approve purchase order');
  assert.equal(actionTitle('crm_delete', 'erp'), 'Confirm: crm delete');
  assert.equal(confirmSourceLine('erp'), 'via erp');
});
