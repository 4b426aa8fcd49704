/**
 * JSDoc types for Parley protocol v1 frames and the client's conversation model.
 *
 * This module has no runtime content; `client.js` and `widget.js` import its types with
 * `import('./types.js').Name` so that `tsc --checkJs` checks them without a build step.
 * Field names and optionality follow docs/protocol.md: an optional field is absent, never null.
 *
 * @module types
 */

// ---------------------------------------------------------------------------------------------
// Closed sets
// ---------------------------------------------------------------------------------------------

/** @typedef {'approve' | 'reject'} Decision */
/** @typedef {'completed' | 'cancelled' | 'failed' | 'interrupted'} TurnStatus */
/** @typedef {'approved' | 'rejected' | 'expired' | 'cancelled'} ConfirmationStatus */
/** @typedef {'up' | 'down' | 1 | 2 | 3 | 4 | 5} Rating */
/** @typedef {'connecting' | 'connected' | 'disconnected'} ConnectionState */

// ---------------------------------------------------------------------------------------------
// Client → server
// ---------------------------------------------------------------------------------------------

/**
 * @typedef {object} HelloFrame
 * @property {'hello'} type
 * @property {number} protocol
 * @property {string} [token]
 * @property {string} [epoch]
 * @property {number} [last_seq]
 * @property {string} [client]
 */

/**
 * @typedef {object} UserMessageFrame
 * @property {'user_message'} type
 * @property {string} client_msg_id
 * @property {string} text
 * @property {string} [conversation_id]
 * @property {Record<string, unknown>} [context]
 * @property {string} [profile] the profile a new conversation is bound to; only on its first message
 */

/**
 * @typedef {object} ConfirmFrame
 * @property {'confirm'} type
 * @property {string} token
 * @property {Decision} decision
 * @property {Record<string, unknown>} [params] the user's edited parameters (approve only)
 */

/**
 * @typedef {object} CancelFrame
 * @property {'cancel'} type
 * @property {string} conversation_id
 * @property {string} [turn_id]
 */

/**
 * @typedef {object} TypingFrame sent by a tab and mirrored (with `seq`) to the user's other tabs
 * @property {'typing'} type
 * @property {string} conversation_id
 * @property {boolean} active
 * @property {number} [seq]
 */

/**
 * @typedef {object} FeedbackFrame
 * @property {'feedback'} type
 * @property {string} message_id
 * @property {Rating} rating
 * @property {string} [comment]
 */

/**
 * @typedef {object} PingFrame
 * @property {'ping'} type
 * @property {number} [t]
 */

/**
 * @typedef {object} PageToolSpec one function of the host page offered to the assistant
 * @property {string} name matches `^[a-zA-Z0-9_-]{1,48}$`; the model sees `page__<name>`
 * @property {string} description
 * @property {Record<string, unknown>} parameters a JSON Schema of type `object`
 * @property {boolean} [confirm] true: each call waits for the user's approval first
 */

/**
 * @typedef {object} PageToolsFrame replaces the page tools this tab offers (sent after `ready`)
 * @property {'page_tools'} type
 * @property {PageToolSpec[]} tools
 */

/**
 * @typedef {object} PageToolResultFrame the answer to a `page_tool_call`
 * @property {'page_tool_result'} type
 * @property {string} call_id
 * @property {unknown} [result] what the handler returned
 * @property {string} [error] why the handler failed
 */

/**
 * @typedef {HelloFrame | UserMessageFrame | ConfirmFrame | CancelFrame | TypingFrame
 *   | FeedbackFrame | PingFrame | PageToolsFrame | PageToolResultFrame} ClientFrame
 */

// ---------------------------------------------------------------------------------------------
// Nested values of server frames
// ---------------------------------------------------------------------------------------------

/**
 * @typedef {object} UserInfo
 * @property {string} id
 * @property {string} tenant
 * @property {string[]} roles
 * @property {string} [name]
 */

/**
 * @typedef {object} Usage
 * @property {number} prompt_tokens
 * @property {number} completion_tokens
 * @property {number} total_tokens
 * @property {number} cost USD
 * @property {string} model
 * @property {boolean} estimated true when counted locally rather than reported by the model endpoint
 */

/**
 * @typedef {object} ConversationSummary
 * @property {string} conversation_id
 * @property {string} title
 * @property {string} status
 * @property {string} updated_at
 * @property {string} [profile] the profile it runs under; absent for conversations older than profiles
 */

/**
 * @typedef {object} ProfileSummary a profile (copilot) the user may start a conversation with
 * @property {string} id what `user_message.profile` names
 * @property {string} title
 * @property {string} [description]
 * @property {string} [greeting] the assistant's first words in a new conversation
 * @property {string[]} [suggestions] example prompts for a new conversation
 * @property {boolean} [default] true on the profile a conversation gets when it names none
 */

/**
 * @typedef {object} Citation the source behind one `[n]` marker of an answer
 * @property {number} n the marker's number: `[1]` is cited by `n: 1`
 * @property {string} document_id
 * @property {string} title
 * @property {string} [url] a link back to the document in the host app
 * @property {string} snippet the start of the cited passage
 */

/**
 * @typedef {object} ToolLine a tool call of a stored answer, as its `tool_result` showed it
 * @property {string} call_id as on its `tool_call` and `tool_result`
 * @property {string} name
 * @property {boolean} ok
 * @property {string} summary
 * @property {View} [view] left out of older lines beyond the server's snapshot limit
 * @property {string} [export] the path of the view's CSV
 */

/**
 * @typedef {object} MessageSnapshot
 * @property {string} conversation_id
 * @property {string} message_id
 * @property {string} role "user", "assistant", "tool" or "note" (a hand-off's note)
 * @property {string} text
 * @property {string} status
 * @property {string} created_at
 * @property {string} [client_msg_id]
 * @property {string} [turn_id]
 * @property {Citation[]} [citations] on an assistant message that cites sources
 * @property {ToolLine[]} [tools] on an assistant message: the tool lines its turn showed, in order
 */

/**
 * @typedef {object} PendingConfirmation
 * @property {string} token
 * @property {string} conversation_id
 * @property {string} turn_id
 * @property {string} action
 * @property {Record<string, unknown>} params
 * @property {string} summary
 * @property {string} expires_at
 * @property {ConfirmField[]} [fields] labels and types of the params, for the card
 * @property {string} [source] the tool source (host app) that will run the action
 * @property {boolean} [destructive] the host says the action may delete or overwrite data
 */

/**
 * @typedef {object} ActiveTurn
 * @property {string} conversation_id
 * @property {string} turn_id
 * @property {string} message_id
 * @property {string} text partial text streamed so far
 * @property {string} [status]
 */

// ---------------------------------------------------------------------------------------------
// Views of tool results and fields of confirmation cards
// ---------------------------------------------------------------------------------------------

/**
 * @typedef {'text' | 'number' | 'money' | 'date' | 'percent'} ValueType how a value is shown:
 *   numbers and money are JSON numbers or decimal strings, dates ISO 8601 strings, percent a
 *   fraction (0.25 is 25%)
 */

/**
 * @typedef {object} ViewColumn a column of a table, or a series of a chart
 * @property {string} key the rows' key holding this column's values
 * @property {string} label
 * @property {ValueType} [type] required on table columns; "number" when absent on a series
 * @property {string} [currency] ISO 4217, for money
 */

/**
 * @typedef {object} TableView
 * @property {'table'} kind
 * @property {string} [title]
 * @property {ViewColumn[]} columns
 * @property {Record<string, unknown>[]} rows
 * @property {number} [total_rows] how many rows there were before the view was cut
 */

/**
 * @typedef {object} ChartView
 * @property {'chart'} kind
 * @property {'bar' | 'line' | 'pie'} chart
 * @property {string} [title]
 * @property {string} x the rows' key of the category (x axis, pie slices)
 * @property {ViewColumn[]} series
 * @property {Record<string, unknown>[]} rows
 * @property {number} [total_rows]
 */

/**
 * @typedef {object} MetricItem one KPI card
 * @property {string} label
 * @property {unknown} value
 * @property {string} [hint]
 * @property {ValueType} [type]
 * @property {string} [currency]
 */

/**
 * @typedef {object} MetricsView
 * @property {'metrics'} kind
 * @property {string} [title]
 * @property {MetricItem[]} items
 */

/** @typedef {TableView | ChartView | MetricsView} View */

/**
 * @typedef {object} ConfirmField how one param of an action is labelled and shown on its card
 * @property {string} key the params' key
 * @property {string} label
 * @property {ValueType | 'list'} type "list": an array of records, shown as a small table
 * @property {string} [currency] ISO 4217, for money
 * @property {ViewColumn[]} [columns] the columns of a list
 */

// ---------------------------------------------------------------------------------------------
// Server → client (`seq` is present on frames that came through the user's frame log)
// ---------------------------------------------------------------------------------------------

/**
 * @typedef {object} ReadyFrame
 * @property {'ready'} type
 * @property {number} protocol
 * @property {string} connection_id
 * @property {UserInfo} user
 * @property {string} epoch
 * @property {number} last_seq
 * @property {boolean} resumed
 * @property {ConversationSummary[]} [conversations]
 * @property {MessageSnapshot[]} [messages]
 * @property {PendingConfirmation[]} pending_confirmations
 * @property {ActiveTurn[]} active_turns
 * @property {ProfileSummary[]} [profiles] the profiles this user may start a conversation with
 * @property {string} [locale] the user's language and region (BCP 47), from the token's `locale` claim
 */

/**
 * @typedef {object} MessageFrame
 * @property {'message'} type
 * @property {string} conversation_id
 * @property {string} message_id
 * @property {string} client_msg_id
 * @property {string} role
 * @property {string} text
 * @property {number} [seq]
 */

/**
 * @typedef {object} ThinkingFrame
 * @property {'thinking'} type
 * @property {string} conversation_id
 * @property {string} turn_id
 * @property {string} [status]
 * @property {boolean} [continuation] true when the turn reports an approval's outcome
 * @property {number} [seq]
 */

/**
 * @typedef {object} ToolCallFrame
 * @property {'tool_call'} type
 * @property {string} conversation_id
 * @property {string} turn_id
 * @property {string} call_id
 * @property {string} name
 * @property {Record<string, unknown>} arguments
 * @property {string} [source] the tool source (host app) of the tool; absent for a built-in one
 * @property {number} [seq]
 */

/**
 * @typedef {object} ToolResultFrame
 * @property {'tool_result'} type
 * @property {string} conversation_id
 * @property {string} turn_id
 * @property {string} call_id
 * @property {string} name
 * @property {boolean} ok
 * @property {string} summary
 * @property {View} [view] a table, chart or metrics view of the result, for people to look at
 * @property {string} [export] the path of a CSV of all the view's rows, relative to the server
 * @property {number} [seq]
 */

/**
 * @typedef {object} ResponseDeltaFrame
 * @property {'response_delta'} type
 * @property {string} conversation_id
 * @property {string} turn_id
 * @property {string} message_id
 * @property {string} delta
 * @property {number} [seq]
 */

/**
 * @typedef {object} ResponseFrame
 * @property {'response'} type
 * @property {string} conversation_id
 * @property {string} turn_id
 * @property {string} message_id
 * @property {string} text
 * @property {Usage} usage
 * @property {Citation[]} [citations] the sources of the `[n]` markers the text uses
 * @property {number} [seq]
 */

/**
 * @typedef {object} ConfirmRequestFrame
 * @property {'confirm_request'} type
 * @property {string} conversation_id
 * @property {string} turn_id
 * @property {string} token
 * @property {string} action
 * @property {Record<string, unknown>} params
 * @property {string} summary
 * @property {string} expires_at ISO 8601 UTC
 * @property {string} [source] the tool source (host app) of the tool; absent for a built-in one
 * @property {boolean} [destructive] the host says the action may delete or overwrite data
 * @property {ConfirmField[]} [fields] labels and types of the params, for the card
 * @property {number} [seq]
 */

/**
 * @typedef {object} ConfirmResolvedFrame
 * @property {'confirm_resolved'} type
 * @property {string} token
 * @property {ConfirmationStatus} status
 * @property {Record<string, unknown>} [params] the approved values, when the user edited them
 * @property {string} [summary] the summary recomputed for the approved values
 * @property {string} [conversation_id]
 * @property {string} [turn_id]
 * @property {number} [seq]
 */

/**
 * @typedef {object} ActionExecutedFrame
 * @property {'action_executed'} type
 * @property {string} token
 * @property {string} action
 * @property {boolean} ok
 * @property {unknown} result
 * @property {string} audit_id
 * @property {string} [conversation_id]
 * @property {string} [turn_id]
 * @property {string} [source] the tool source (host app) of the tool; absent for a built-in one
 * @property {number} [seq]
 */

/**
 * @typedef {object} TurnEndFrame
 * @property {'turn_end'} type
 * @property {string} conversation_id
 * @property {string} turn_id
 * @property {TurnStatus} status
 * @property {TurnError} [error] why the turn ended early, for every tab
 * @property {string[]} [awaiting] confirmation tokens still pending when the turn ended
 * @property {number} [seq]
 */

/**
 * @typedef {object} TurnError
 * @property {string} code
 * @property {string} message
 * @property {boolean} retryable
 * @property {number} [retry_after] seconds
 */

/**
 * @typedef {object} ConversationUpdatedFrame
 * @property {'conversation_updated'} type
 * @property {string} conversation_id
 * @property {string} status
 * @property {string} [title]
 * @property {string} [profile] the profile the conversation runs under (after a hand-off, the new one)
 * @property {string} [note] a line to show in the conversation, e.g. why it was handed over
 * @property {number} [seq]
 */

/**
 * @typedef {object} ErrorFrame
 * @property {'error'} type
 * @property {string} code
 * @property {string} message
 * @property {boolean} retryable
 * @property {string} [ref] the client's id (e.g. a client_msg_id) the error is about
 * @property {number} [retry_after] seconds
 * @property {boolean} [local] set by the client on errors it raises itself (never on the wire)
 */

/**
 * @typedef {object} PongFrame
 * @property {'pong'} type
 * @property {number} [t]
 */

/**
 * @typedef {object} PageToolCallFrame run a page tool in this tab; sent to one tab, never logged
 * @property {'page_tool_call'} type
 * @property {string} call_id echoed by the `page_tool_result`
 * @property {string} name the tool's name as registered (without `page__`)
 * @property {Record<string, unknown>} arguments
 */

/**
 * @typedef {ReadyFrame | MessageFrame | ThinkingFrame | ToolCallFrame | ToolResultFrame
 *   | ResponseDeltaFrame | ResponseFrame | ConfirmRequestFrame | ConfirmResolvedFrame
 *   | ActionExecutedFrame | TurnEndFrame | TypingFrame | ConversationUpdatedFrame
 *   | PageToolCallFrame | ErrorFrame | PongFrame} ServerFrame
 */

// ---------------------------------------------------------------------------------------------
// The client's conversation model (see ConversationModel in client.js)
// ---------------------------------------------------------------------------------------------

/**
 * @typedef {object} MessageItem a user or assistant message in a conversation
 * @property {'message'} kind
 * @property {string} id message_id (or the client_msg_id while the server has not acknowledged it)
 * @property {string} conversationId
 * @property {string} role
 * @property {string} text streamed text so far, or the final text
 * @property {'pending' | 'sent' | 'failed' | 'streaming' | 'complete' | 'cancelled' | 'interrupted'} status
 * @property {string} [clientMsgId]
 * @property {string} [turnId]
 * @property {Usage} [usage]
 * @property {ErrorFrame} [error] why a pending message failed
 * @property {Record<string, unknown>} [context]
 * @property {string} [profile] the profile a pending message asks a new conversation for
 * @property {Citation[]} [citations] the sources of an answer's `[n]` markers
 */

/**
 * @typedef {object} NoteItem a line about the conversation itself, e.g. a hand-off
 * @property {'note'} kind
 * @property {string} id
 * @property {string} conversationId
 * @property {string} text
 * @property {string} [profile] the profile the conversation runs under from here on
 * @property {string} [turnId] the turn that was running when it arrived
 */

/**
 * @typedef {object} ToolItem progress of one read-only tool call
 * @property {'tool'} kind
 * @property {string} id call_id
 * @property {string} conversationId
 * @property {string} turnId
 * @property {string} name
 * @property {Record<string, unknown>} arguments
 * @property {'running' | 'ok' | 'failed'} status
 * @property {string} [summary]
 * @property {View} [view] from `tool_result.view`, as sent (the widget checks it before drawing)
 * @property {string} [export] from `tool_result.export`
 */

/**
 * @typedef {object} ActionOutcome
 * @property {boolean} ok
 * @property {unknown} result
 * @property {string} auditId
 */

/**
 * @typedef {object} ConfirmationItem an action waiting for (or decided by) the user
 * @property {'confirmation'} kind
 * @property {string} id the confirmation token
 * @property {string} token
 * @property {string} conversationId
 * @property {string} turnId
 * @property {string} action
 * @property {Record<string, unknown>} params
 * @property {string} summary
 * @property {string} expiresAt
 * @property {'pending' | ConfirmationStatus} status
 * @property {ActionOutcome} [outcome] set when the action ran
 * @property {ConfirmField[]} [fields] from `confirm_request.fields`
 * @property {string} [source] the tool source (host app) that will run the action
 * @property {boolean} [destructive] the host says the action may delete or overwrite data
 */

/** @typedef {MessageItem | ToolItem | ConfirmationItem | NoteItem} ConversationItem */

/**
 * @typedef {object} Conversation
 * @property {string} id
 * @property {string} title
 * @property {string} status
 * @property {string} [updatedAt]
 * @property {string} [profile] the id of the profile it runs under, when known
 * @property {ConversationItem[]} items messages, tool progress and confirmations in arrival order
 * @property {boolean} otherTabTyping the user is typing in this conversation in another tab
 */

/**
 * @typedef {object} Turn a running assistant turn
 * @property {string} turnId
 * @property {string} conversationId
 * @property {string} [status] what the assistant is doing, from `thinking`; cleared when text streams
 * @property {string} [messageId] the assistant message being streamed
 */

/**
 * @typedef {object} ChangeDetail detail of the model's `change` event
 * @property {string} reason the frame type that caused it, or "reset", "local", "failed"
 * @property {string} [conversationId]
 */

export {};
