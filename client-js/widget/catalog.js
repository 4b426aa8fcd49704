/**
 * Every sentence and label the widget shows, by message id, in each language it ships. A
 * {@link translator} looks an id up in one language and fills in `{name}` placeholders; an id a
 * language lacks falls back to English, so a missing translation shows English, never an id.
 *
 * Which language: the element's `lang` attribute, else the user's locale from `ready.locale`,
 * else English ({@link pickLanguage}). Numbers, money and dates follow the same locale through
 * `Intl` (format.js); the catalog holds only words.
 *
 * @module catalog
 */

/** @typedef {'en' | 'de'} Language */
/** @typedef {(id: string, values?: Record<string, string | number>) => string} Translate */

const OUR_SIDE_EN = 'Something went wrong on our side. Please try again.';
const TRY_AGAIN_SOON_EN = 'The assistant is temporarily unavailable. Please try again in a moment.';
const RELOAD_EN = 'This page uses an outdated version of the assistant. Please reload the page.';
const SIGNED_OUT_EN = 'Your session has ended. Please reload the page to sign in again.';
const INTERRUPTED_EN = 'The answer was interrupted. Please ask again.';

/** @type {Record<string, string>} */
const en = {
  // Header, launcher, connection
  'title.default': 'Assistant',
  'launcher.open': 'Open {title}',
  'state.connecting': 'Connecting…',
  'state.connected': 'Online',
  'state.disconnected': 'Offline',
  'dev.label': 'development model',
  'header.new': 'New conversation',
  'header.minimise': 'Minimise assistant',
  'header.minimise.short': 'Minimise',
  'banner.reconnecting': 'Connection lost. Reconnecting…',
  'banner.connecting': 'Connecting to the assistant…',
  'banner.retry': 'Try again',
  'log.label': 'Conversation',
  'error.dismiss': 'Dismiss',
  'input.label': 'Message the assistant',
  'input.placeholder': 'Ask anything…',
  'stop.label': 'Stop the answer',
  'stop.text': 'Stop',
  'send.label': 'Send message',
  'send.text': 'Send',
  'form.label': 'Message',
  'typing.waiting': 'Waiting for your decision…',
  'typing.thinking': 'Thinking…',
  'typing.otherTab': 'You are typing in another tab…',
  'download.busy': 'Downloading…',

  // Conversations list
  'conversations.show': 'Conversations',
  'conversations.label': 'Your conversations',
  'conversations.empty': 'No conversations yet.',
  'conversations.untitled': 'New conversation',
  'conversations.unread': 'new activity',
  'conversations.escalated': 'with a person',
  'conversations.rename': 'Rename',
  'conversations.renameLabel': 'New title for “{title}”',
  'conversations.save': 'Save',
  'conversations.cancel': 'Cancel',
  'conversations.archive': 'Archive',
  'conversations.archiveLabel': 'Archive “{title}”',
  'conversations.loadFailed': 'Could not load this conversation. Please try again.',
  'conversations.changeFailed': 'Could not change the conversation. Please try again.',

  // Talk to a human
  'escalate.button': 'Talk to a person',
  'escalate.reason': 'The user asked to talk to a person from the assistant.',
  'escalate.busy': 'Asking a person…',
  'escalate.done': 'A person has been asked to take over this conversation.',
  'escalate.failed': 'Could not reach a person right now. Please try again.',

  // Messages
  'message.sending': 'Sending…',
  'message.notSent': 'Not sent.',
  'message.retry': 'Retry',
  'message.discard': 'Discard',
  'message.stopped': 'Stopped.',
  'message.interrupted': 'The answer was interrupted.',
  'feedback.upLabel': 'Helpful answer',
  'feedback.up': 'Helpful',
  'feedback.downLabel': 'Unhelpful answer',
  'feedback.down': 'Not helpful',
  'feedback.thanks': 'Thanks for the feedback.',

  // Confirmation cards
  'card.label': 'Confirm: {summary}',
  'card.title': 'Confirm: {action}',
  'card.via': 'via {source}',
  'card.destructive': 'Warning: this action may delete or overwrite data, and may not be undoable.',
  'card.approve': 'Approve',
  'card.reject': 'Reject',
  'card.edit': 'Edit',
  'card.editDone': 'Done editing',
  'card.expired': 'Expired.',
  'card.expiresIn': 'Expires in {time}',
  'card.approving': 'Approving…',
  'card.rejecting': 'Rejecting…',
  'card.done': 'Done.',
  'card.doneWith': 'Done: {detail}',
  'card.failed': 'The action failed.',
  'card.failedWith': 'The action failed: {detail}',
  'card.approved': 'Approved. Running…',
  'card.rejected': 'Rejected. Nothing was done.',
  'card.expiredNothing': 'Expired. Nothing was done.',
  'card.cancelled': 'Cancelled. Nothing was done.',
  'card.invalid': 'Please correct: {problem}',
  'field.required': 'required',
  'field.number': 'must be a number',
  'field.date': 'must be a date',
  'value.yes': 'yes',
  'value.no': 'no',

  // Tools, views, sources
  'tool.running': '{name}…',
  'tool.failed': '{name} failed',
  'tool.failedWith': '{name} failed: {summary}',
  'tool.done': '{name}: done',
  'tool.doneWith': '{name}: {summary}',
  'view.download': 'Download CSV',
  'view.table': 'Table',
  'view.truncated': 'Showing {shown} of {total}',
  'chart.bar': 'Bar chart',
  'chart.line': 'Line chart',
  'chart.pie': 'Pie chart',
  'chart.description': '{kind}. {title}{series} by {x}, {count} values. The data table follows.',
  'sources.label': 'Sources',
  'source.marker': 'Source {n}: {title}',
  'source.show': 'Show the passage from {title}',

  // Profiles
  'profile.switcher': 'New conversation with',
  'profile.greeting':
    'Ask about your orders, balances and customers. Actions always ask you first.',

  // Errors
  'error.generic': 'Something went wrong.',
  'error.genericRetry': 'Something went wrong. Please try again.',
  'error.invalid_json': OUR_SIDE_EN,
  'error.invalid_frame': OUR_SIDE_EN,
  'error.unknown_type': OUR_SIDE_EN,
  'error.missing_field': OUR_SIDE_EN,
  'error.invalid_field': OUR_SIDE_EN,
  'error.hello_required': OUR_SIDE_EN,
  'error.frame_too_large': 'That message is too large to send.',
  'error.unsupported_protocol': RELOAD_EN,
  'error.unauthenticated': SIGNED_OUT_EN,
  'error.token_expired': 'Your session has expired. Please reload the page to sign in again.',
  'error.forbidden': "You don't have permission to do that.",
  'error.conversation_not_found': "That conversation doesn't exist any more. Start a new one.",
  'error.message_not_found': "That message doesn't exist any more.",
  'error.confirmation_not_found': "That request doesn't exist any more.",
  'error.confirmation_not_pending': 'That request was already decided.',
  'error.profile_not_found': "That assistant isn't available. Choose another one and send again.",
  'error.confirmation_expired':
    'That request expired before it was confirmed. Ask again if you still want it.',
  'error.invalid_params': 'Some values on the card are not valid.',
  'error.turn_in_progress':
    'The assistant is still answering. Wait for it to finish or press Stop.',
  'error.no_active_turn': 'There is nothing to stop.',
  'error.message_too_long': 'That message is too long. Please shorten it.',
  'error.conversation_full': 'This conversation is full. Please start a new one.',
  'error.rate_limited': "You're sending messages faster than allowed. Please wait a moment.",
  'error.too_many_connections':
    'Too many assistant windows are open. Close a few tabs and try again.',
  'error.flooding': "You're sending too much too quickly. Please wait a moment.",
  'error.budget_exceeded':
    "Your organisation's assistant budget is used up. Please contact your administrator.",
  'error.budget_warning': "Heads up: your organisation's assistant budget is nearly used up.",
  'error.model_error': TRY_AGAIN_SOON_EN,
  'error.model_unavailable': TRY_AGAIN_SOON_EN,
  'error.model_rate_limited': 'The assistant is busy right now. Please try again in a moment.',
  'error.model_timeout': 'The assistant took too long to answer. Please try again.',
  'error.stream_interrupted': INTERRUPTED_EN,
  'error.store_unavailable': OUR_SIDE_EN,
  'error.turn_interrupted': INTERRUPTED_EN,
  'error.tool_error': 'A lookup failed while answering.',
  'error.internal_error': OUR_SIDE_EN,
  'error.export_failed': 'The download failed. Please try again.',
  'error.queue_full':
    'You are offline and too much is waiting to be sent. Please wait for the connection.',
  'error.token_unavailable': 'Could not sign you in to the assistant. Retrying…',
  'error.connect_failed': 'Could not reach the assistant. Retrying…',
  'error.profile_unavailable':
    "The assistant “{profile}” isn't available. Choose another one and send again.",
  'error.profile_lost':
    "You no longer have access to this conversation's assistant. Please start a new conversation.",
  'error.profile_forbidden':
    "You don't have access to the assistant “{profile}”. Choose another one and send again.",
  'error.profile_forbidden_unnamed':
    "You don't have access to that assistant. Choose another one and send again.",

  // Close codes
  'close.1008': 'The assistant closed the connection.',
  'close.1009': 'A message was too large, so the assistant closed the connection.',
  'close.4400': 'The assistant could not start the conversation.',
  'close.4401': SIGNED_OUT_EN,
  'close.4403': "This site isn't allowed to use the assistant.",
  'close.4426': RELOAD_EN,
  'close.other': 'The assistant is not available right now.',
};

const OUR_SIDE_DE = 'Bei uns ist etwas schiefgelaufen. Bitte versuchen Sie es erneut.';
const TRY_AGAIN_SOON_DE =
  'Der Assistent ist vorübergehend nicht erreichbar. Bitte versuchen Sie es gleich noch einmal.';
const RELOAD_DE =
  'Diese Seite nutzt eine veraltete Version des Assistenten. Bitte laden Sie die Seite neu.';
const SIGNED_OUT_DE =
  'Ihre Sitzung ist beendet. Bitte laden Sie die Seite neu, um sich erneut anzumelden.';
const INTERRUPTED_DE = 'Die Antwort wurde unterbrochen. Bitte fragen Sie noch einmal.';

/** @type {Record<string, string>} */
const de = {
  'title.default': 'Assistent',
  'launcher.open': '{title} öffnen',
  'state.connecting': 'Verbinde…',
  'state.connected': 'Online',
  'state.disconnected': 'Offline',
  'dev.label': 'Entwicklungsmodell',
  'header.new': 'Neues Gespräch',
  'header.minimise': 'Assistent minimieren',
  'header.minimise.short': 'Minimieren',
  'banner.reconnecting': 'Verbindung unterbrochen. Verbinde erneut…',
  'banner.connecting': 'Verbinde mit dem Assistenten…',
  'banner.retry': 'Erneut versuchen',
  'log.label': 'Gespräch',
  'error.dismiss': 'Schließen',
  'input.label': 'Nachricht an den Assistenten',
  'input.placeholder': 'Fragen Sie etwas…',
  'stop.label': 'Antwort abbrechen',
  'stop.text': 'Stopp',
  'send.label': 'Nachricht senden',
  'send.text': 'Senden',
  'form.label': 'Nachricht',
  'typing.waiting': 'Wartet auf Ihre Entscheidung…',
  'typing.thinking': 'Denkt nach…',
  'typing.otherTab': 'Sie tippen in einem anderen Tab…',
  'download.busy': 'Wird heruntergeladen…',

  'conversations.show': 'Gespräche',
  'conversations.label': 'Ihre Gespräche',
  'conversations.empty': 'Noch keine Gespräche.',
  'conversations.untitled': 'Neues Gespräch',
  'conversations.unread': 'neue Aktivität',
  'conversations.escalated': 'bei einem Menschen',
  'conversations.rename': 'Umbenennen',
  'conversations.renameLabel': 'Neuer Titel für „{title}“',
  'conversations.save': 'Speichern',
  'conversations.cancel': 'Abbrechen',
  'conversations.archive': 'Archivieren',
  'conversations.archiveLabel': '„{title}“ archivieren',
  'conversations.loadFailed':
    'Das Gespräch konnte nicht geladen werden. Bitte versuchen Sie es erneut.',
  'conversations.changeFailed':
    'Das Gespräch konnte nicht geändert werden. Bitte versuchen Sie es erneut.',

  'escalate.button': 'Mit einem Menschen sprechen',
  'escalate.reason': 'Der Benutzer möchte im Assistenten mit einem Menschen sprechen.',
  'escalate.busy': 'Ein Mensch wird gerufen…',
  'escalate.done': 'Ein Mensch wurde gebeten, dieses Gespräch zu übernehmen.',
  'escalate.failed': 'Gerade ist niemand erreichbar. Bitte versuchen Sie es erneut.',

  'message.sending': 'Wird gesendet…',
  'message.notSent': 'Nicht gesendet.',
  'message.retry': 'Erneut senden',
  'message.discard': 'Verwerfen',
  'message.stopped': 'Abgebrochen.',
  'message.interrupted': 'Die Antwort wurde unterbrochen.',
  'feedback.upLabel': 'Hilfreiche Antwort',
  'feedback.up': 'Hilfreich',
  'feedback.downLabel': 'Nicht hilfreiche Antwort',
  'feedback.down': 'Nicht hilfreich',
  'feedback.thanks': 'Danke für Ihre Rückmeldung.',

  'card.label': 'Bestätigen: {summary}',
  'card.title': 'Bestätigen: {action}',
  'card.via': 'über {source}',
  'card.destructive':
    'Achtung: Diese Aktion kann Daten löschen oder überschreiben und lässt sich womöglich nicht rückgängig machen.',
  'card.approve': 'Genehmigen',
  'card.reject': 'Ablehnen',
  'card.edit': 'Bearbeiten',
  'card.editDone': 'Fertig',
  'card.expired': 'Abgelaufen.',
  'card.expiresIn': 'Läuft ab in {time}',
  'card.approving': 'Wird genehmigt…',
  'card.rejecting': 'Wird abgelehnt…',
  'card.done': 'Erledigt.',
  'card.doneWith': 'Erledigt: {detail}',
  'card.failed': 'Die Aktion ist fehlgeschlagen.',
  'card.failedWith': 'Die Aktion ist fehlgeschlagen: {detail}',
  'card.approved': 'Genehmigt. Wird ausgeführt…',
  'card.rejected': 'Abgelehnt. Es wurde nichts getan.',
  'card.expiredNothing': 'Abgelaufen. Es wurde nichts getan.',
  'card.cancelled': 'Abgebrochen. Es wurde nichts getan.',
  'card.invalid': 'Bitte korrigieren: {problem}',
  'field.required': 'ist erforderlich',
  'field.number': 'muss eine Zahl sein',
  'field.date': 'muss ein Datum sein',
  'value.yes': 'ja',
  'value.no': 'nein',

  'tool.running': '{name}…',
  'tool.failed': '{name} fehlgeschlagen',
  'tool.failedWith': '{name} fehlgeschlagen: {summary}',
  'tool.done': '{name}: erledigt',
  'tool.doneWith': '{name}: {summary}',
  'view.download': 'CSV herunterladen',
  'view.table': 'Tabelle',
  'view.truncated': '{shown} von {total} angezeigt',
  'chart.bar': 'Balkendiagramm',
  'chart.line': 'Liniendiagramm',
  'chart.pie': 'Kreisdiagramm',
  'chart.description': '{kind}. {title}{series} nach {x}, {count} Werte. Die Datentabelle folgt.',
  'sources.label': 'Quellen',
  'source.marker': 'Quelle {n}: {title}',
  'source.show': 'Abschnitt aus {title} zeigen',

  'profile.switcher': 'Neues Gespräch mit',
  'profile.greeting':
    'Fragen Sie nach Bestellungen, Salden und Kunden. Vor jeder Aktion werden Sie gefragt.',

  'error.generic': 'Etwas ist schiefgelaufen.',
  'error.genericRetry': 'Etwas ist schiefgelaufen. Bitte versuchen Sie es erneut.',
  'error.invalid_json': OUR_SIDE_DE,
  'error.invalid_frame': OUR_SIDE_DE,
  'error.unknown_type': OUR_SIDE_DE,
  'error.missing_field': OUR_SIDE_DE,
  'error.invalid_field': OUR_SIDE_DE,
  'error.hello_required': OUR_SIDE_DE,
  'error.frame_too_large': 'Diese Nachricht ist zu groß zum Senden.',
  'error.unsupported_protocol': RELOAD_DE,
  'error.unauthenticated': SIGNED_OUT_DE,
  'error.token_expired':
    'Ihre Sitzung ist abgelaufen. Bitte laden Sie die Seite neu, um sich erneut anzumelden.',
  'error.forbidden': 'Dazu fehlt Ihnen die Berechtigung.',
  'error.conversation_not_found': 'Dieses Gespräch gibt es nicht mehr. Beginnen Sie ein neues.',
  'error.message_not_found': 'Diese Nachricht gibt es nicht mehr.',
  'error.confirmation_not_found': 'Diese Anfrage gibt es nicht mehr.',
  'error.confirmation_not_pending': 'Über diese Anfrage wurde bereits entschieden.',
  'error.profile_not_found':
    'Dieser Assistent ist nicht verfügbar. Wählen Sie einen anderen und senden Sie erneut.',
  'error.confirmation_expired':
    'Diese Anfrage ist abgelaufen, bevor sie bestätigt wurde. Fragen Sie erneut, wenn Sie sie noch möchten.',
  'error.invalid_params': 'Einige Werte auf der Karte sind ungültig.',
  'error.turn_in_progress':
    'Der Assistent antwortet noch. Warten Sie, bis er fertig ist, oder drücken Sie Stopp.',
  'error.no_active_turn': 'Es gibt nichts abzubrechen.',
  'error.message_too_long': 'Diese Nachricht ist zu lang. Bitte kürzen Sie sie.',
  'error.conversation_full': 'Dieses Gespräch ist voll. Bitte beginnen Sie ein neues.',
  'error.rate_limited': 'Sie senden schneller als erlaubt. Bitte warten Sie einen Moment.',
  'error.too_many_connections':
    'Zu viele Assistentenfenster sind offen. Schließen Sie einige Tabs und versuchen Sie es erneut.',
  'error.flooding': 'Sie senden zu viel in zu kurzer Zeit. Bitte warten Sie einen Moment.',
  'error.budget_exceeded':
    'Das Assistenten-Budget Ihrer Organisation ist aufgebraucht. Bitte wenden Sie sich an Ihre Administration.',
  'error.budget_warning':
    'Hinweis: Das Assistenten-Budget Ihrer Organisation ist fast aufgebraucht.',
  'error.model_error': TRY_AGAIN_SOON_DE,
  'error.model_unavailable': TRY_AGAIN_SOON_DE,
  'error.model_rate_limited':
    'Der Assistent ist gerade ausgelastet. Bitte versuchen Sie es gleich noch einmal.',
  'error.model_timeout': 'Der Assistent hat zu lange gebraucht. Bitte versuchen Sie es erneut.',
  'error.stream_interrupted': INTERRUPTED_DE,
  'error.store_unavailable': OUR_SIDE_DE,
  'error.turn_interrupted': INTERRUPTED_DE,
  'error.tool_error': 'Beim Antworten ist eine Abfrage fehlgeschlagen.',
  'error.internal_error': OUR_SIDE_DE,
  'error.export_failed': 'Der Download ist fehlgeschlagen. Bitte versuchen Sie es erneut.',
  'error.queue_full':
    'Sie sind offline und zu viel wartet auf das Senden. Bitte warten Sie auf die Verbindung.',
  'error.token_unavailable': 'Anmeldung beim Assistenten fehlgeschlagen. Neuer Versuch…',
  'error.connect_failed': 'Der Assistent ist nicht erreichbar. Neuer Versuch…',
  'error.profile_unavailable':
    'Der Assistent „{profile}“ ist nicht verfügbar. Wählen Sie einen anderen und senden Sie erneut.',
  'error.profile_lost':
    'Sie haben keinen Zugriff mehr auf den Assistenten dieses Gesprächs. Bitte beginnen Sie ein neues Gespräch.',
  'error.profile_forbidden':
    'Sie haben keinen Zugriff auf den Assistenten „{profile}“. Wählen Sie einen anderen und senden Sie erneut.',
  'error.profile_forbidden_unnamed':
    'Sie haben keinen Zugriff auf diesen Assistenten. Wählen Sie einen anderen und senden Sie erneut.',

  'close.1008': 'Der Assistent hat die Verbindung geschlossen.',
  'close.1009': 'Eine Nachricht war zu groß; der Assistent hat die Verbindung geschlossen.',
  'close.4400': 'Der Assistent konnte das Gespräch nicht beginnen.',
  'close.4401': SIGNED_OUT_DE,
  'close.4403': 'Diese Website darf den Assistenten nicht nutzen.',
  'close.4426': RELOAD_DE,
  'close.other': 'Der Assistent ist gerade nicht verfügbar.',
};

/** The shipped catalogs by language. */
export const CATALOGS = /** @type {const} */ ({ en, de });

/**
 * The language to speak: the first candidate locale whose language has a catalog (`de-AT`
 * speaks `de`), else English.
 *
 * @param {...(string | null | undefined)} candidates locales, most preferred first
 * @returns {Language}
 */
export function pickLanguage(...candidates) {
  for (const candidate of candidates) {
    const language = candidate?.trim().toLowerCase().split(/[-_]/)[0];
    if (language && Object.hasOwn(CATALOGS, language)) return /** @type {Language} */ (language);
  }
  return 'en';
}

/**
 * A lookup of message ids in one language, English for ids it lacks and the id itself for an
 * id no catalog has (a mistake, which then shows where it is).
 *
 * @param {Language} language
 * @returns {Translate}
 */
export function translator(language) {
  const catalog = CATALOGS[language] ?? en;
  return (id, values) => {
    const text = catalog[id] ?? en[id] ?? id;
    if (!values) return text;
    return text.replace(/\{(\w+)\}/g, (whole, name) =>
      Object.hasOwn(values, name) ? String(values[name]) : whole,
    );
  };
}

/** The English lookup: the default of the wording functions. */
export const english = translator('en');
