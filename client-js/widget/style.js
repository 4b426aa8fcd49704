/**
 * The stylesheet of `<parley-assistant>`, placed in its shadow root.
 *
 * Kept in a module rather than a .css file so the widget stays one import with no flash of
 * unstyled content. Everything themable goes through the `--parley-*` custom properties, which
 * inherit through the shadow boundary; the private `--_*` variables hold their resolved values.
 *
 * @module style
 */

export const WIDGET_STYLE = `
:host {
  --_accent: var(--parley-accent, #2457d6);
  --_bg: var(--parley-bg, #ffffff);
  --_fg: var(--parley-fg, #1c2433);
  --_muted: var(--parley-muted, #667085);
  --_radius: var(--parley-radius, 14px);
  --_line: color-mix(in srgb, var(--_fg) 12%, transparent);
  --_soft: color-mix(in srgb, var(--_fg) 5%, var(--_bg));
  --_ok: #157f3b;
  --_bad: #b42318;
  position: fixed;
  right: 20px;
  bottom: 20px;
  z-index: var(--parley-z, 2147483000);
  font-family: var(--parley-font, system-ui, -apple-system, "Segoe UI", Roboto, sans-serif);
  font-size: 14px;
  line-height: 1.45;
  color: var(--_fg);
}
* { box-sizing: border-box; }
[hidden] { display: none !important; }
button { font: inherit; color: inherit; cursor: pointer; }
button:focus-visible, textarea:focus-visible { outline: 2px solid var(--_accent); outline-offset: 2px; }
.launcher {
  width: 56px; height: 56px; border-radius: 50%; border: none; position: relative;
  background: var(--_accent); color: #fff; display: grid; place-items: center;
  box-shadow: 0 6px 20px rgb(0 0 0 / 0.22);
}
.launcher svg { width: 26px; height: 26px; }
.badge {
  position: absolute; top: -2px; right: -2px; min-width: 20px; height: 20px; padding: 0 5px;
  border-radius: 10px; background: var(--_bad); color: #fff; font-size: 12px; font-weight: 600;
  display: grid; place-items: center; border: 2px solid var(--_bg);
}
.panel {
  position: absolute; right: 0; bottom: 0; width: 390px; height: min(640px, calc(100vh - 40px));
  display: flex; flex-direction: column; overflow: hidden;
  background: var(--_bg); border-radius: var(--_radius); border: 1px solid var(--_line);
  box-shadow: 0 12px 40px rgb(0 0 0 / 0.22);
}
header {
  display: flex; align-items: center; gap: 8px; padding: 12px 12px 12px 16px;
  border-bottom: 1px solid var(--_line);
}
.heading { flex: 1; min-width: 0; }
h2 { margin: 0; font-size: 15px; font-weight: 650; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.sub { display: flex; flex-wrap: wrap; gap: 2px 8px; align-items: center; font-size: 12px; color: var(--_muted); }
.sub > * { white-space: nowrap; }
.state::before {
  content: ""; display: inline-block; width: 7px; height: 7px; border-radius: 50%;
  margin-right: 5px; background: var(--_muted); vertical-align: 1px;
}
.state[data-state="connected"]::before { background: #22a559; }
.state[data-state="connecting"]::before { background: #e0a200; }
.dev-label {
  border: 1px solid color-mix(in srgb, #b35c00 40%, transparent); color: #9a4f00;
  background: #fff6e8; border-radius: 6px; padding: 0 6px; font-size: 11px;
}
.icon-button {
  width: 32px; height: 32px; border-radius: 8px; border: none; background: transparent;
  display: grid; place-items: center; color: var(--_muted);
}
.icon-button:hover { background: var(--_soft); color: var(--_fg); }
.icon-button svg { width: 18px; height: 18px; }
.banner {
  display: flex; gap: 8px; align-items: center; justify-content: space-between;
  padding: 8px 16px; font-size: 13px; background: #fff6e8; color: #7a4100;
  border-bottom: 1px solid var(--_line);
}
.banner[data-kind="failed"] { background: #fdecea; color: var(--_bad); }
.banner button { border: 1px solid currentColor; background: transparent; border-radius: 6px; padding: 2px 8px; }
.log { flex: 1; overflow-y: auto; padding: 16px; display: flex; flex-direction: column; gap: 10px; }
.empty { margin: auto 0; text-align: center; color: var(--_muted); }
.empty p { margin: 0 0 12px; }
.suggestions { display: flex; flex-wrap: wrap; gap: 6px; justify-content: center; }
.suggestion {
  border: 1px solid var(--_line); background: var(--_bg); border-radius: 999px; padding: 5px 11px; font-size: 13px;
}
.suggestion:hover { border-color: var(--_accent); color: var(--_accent); }
.msg { display: flex; flex-direction: column; max-width: 88%; }
.msg.user { align-self: flex-end; align-items: flex-end; }
.msg.assistant { align-self: flex-start; }
.bubble { padding: 8px 12px; border-radius: 12px; overflow-wrap: anywhere; }
.user .bubble { background: var(--_accent); color: #fff; border-bottom-right-radius: 4px; white-space: pre-wrap; }
.assistant .bubble { background: var(--_soft); border-bottom-left-radius: 4px; }
/* An answer that ended before its first word shows only its note ("interrupted", "stopped"). */
.msg:not([data-status="streaming"]) .bubble:empty { display: none; }
.bubble p { margin: 0; }
.bubble p + p, .bubble p + ul, .bubble p + ol, .bubble ul + p, .bubble ol + p, .bubble pre { margin-top: 6px; }
.bubble ul, .bubble ol { margin: 0; padding-left: 20px; }
.bubble code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px;
  background: color-mix(in srgb, var(--_fg) 8%, transparent); padding: 0 3px; border-radius: 4px; }
.bubble pre { margin: 6px 0 0; padding: 8px; overflow-x: auto; border-radius: 8px;
  background: color-mix(in srgb, var(--_fg) 7%, transparent); }
.bubble pre code { background: none; padding: 0; }
.msg[data-status="streaming"] .bubble::after {
  content: ""; display: inline-block; width: 7px; height: 14px; margin-left: 2px; vertical-align: -2px;
  background: currentColor; opacity: 0.5; animation: blink 1s steps(2) infinite;
}
@keyframes blink { to { visibility: hidden; } }
.meta { font-size: 12px; color: var(--_muted); margin-top: 3px; display: flex; gap: 6px; align-items: center; }
.meta.failed { color: var(--_bad); }
.link-button { border: none; background: none; padding: 0; color: var(--_accent); text-decoration: underline; }
.feedback { display: flex; gap: 2px; }
.feedback button { border: none; background: transparent; border-radius: 6px; padding: 2px 5px; color: var(--_muted); }
.feedback button:hover { background: var(--_soft); color: var(--_fg); }
.feedback button[aria-pressed="true"] { color: var(--_accent); background: color-mix(in srgb, var(--_accent) 12%, transparent); }
.feedback svg { width: 15px; height: 15px; display: block; }
.tool { font-size: 12.5px; color: var(--_muted); display: flex; gap: 6px; align-items: baseline; }
.tool::before { content: "↻"; }
.tool[data-status="ok"]::before { content: "✓"; color: var(--_ok); }
.tool[data-status="failed"]::before { content: "!"; color: var(--_bad); font-weight: 700; }
.confirm {
  border: 1px solid color-mix(in srgb, var(--_accent) 35%, transparent); border-radius: 12px;
  padding: 12px; background: color-mix(in srgb, var(--_accent) 4%, var(--_bg));
}
.confirm .title { font-size: 12px; text-transform: uppercase; letter-spacing: 0.04em; color: var(--_muted); margin: 0 0 4px; }
.confirm .summary { margin: 0 0 8px; font-weight: 600; }
.confirm dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 0 0 10px; font-size: 13px; }
.confirm dt { color: var(--_muted); }
.confirm dd { margin: 0; overflow-wrap: anywhere; }
.confirm .countdown { font-size: 12px; color: var(--_muted); margin: 0 0 10px; }
.confirm .buttons { display: flex; gap: 8px; }
.confirm .buttons button { flex: 1; border-radius: 8px; padding: 7px 10px; font-weight: 600; }
.approve { background: var(--_accent); color: #fff; border: 1px solid var(--_accent); }
.reject { background: var(--_bg); border: 1px solid var(--_line); }
.confirm button:disabled { opacity: 0.55; cursor: default; }
.result { font-weight: 600; font-size: 13px; }
.result[data-tone="ok"] { color: var(--_ok); }
.confirm .result-fields { margin: 6px 0 0; font-weight: 400; color: var(--_fg); }
.result[data-tone="bad"] { color: var(--_bad); }
.result[data-tone="neutral"], .result[data-tone="busy"] { color: var(--_muted); }
.typing { padding: 0 16px 6px; font-size: 12.5px; color: var(--_muted); display: flex; gap: 8px; align-items: center; }
.dots { display: inline-flex; gap: 3px; }
.typing[data-waiting] .dots { display: none; }
.dots span { width: 5px; height: 5px; border-radius: 50%; background: var(--_muted); animation: bounce 1.2s infinite ease-in-out; }
.dots span:nth-child(2) { animation-delay: 0.15s; }
.dots span:nth-child(3) { animation-delay: 0.3s; }
@keyframes bounce { 0%, 80%, 100% { opacity: 0.3; transform: none; } 40% { opacity: 1; transform: translateY(-3px); } }
.error { margin: 0 16px 8px; padding: 8px 10px; border-radius: 8px; font-size: 13px; background: #fdecea; color: var(--_bad); display: flex; gap: 8px; }
.error span { flex: 1; }
.error button { border: none; background: none; padding: 0 2px; color: inherit; }
form { display: flex; gap: 8px; align-items: flex-end; padding: 10px 12px 12px; border-top: 1px solid var(--_line); }
textarea {
  flex: 1; resize: none; font: inherit; color: inherit; background: var(--_bg); max-height: 140px;
  border: 1px solid var(--_line); border-radius: 10px; padding: 8px 10px; line-height: 1.4;
}
.send, .stop { border-radius: 10px; padding: 8px 14px; font-weight: 600; border: 1px solid var(--_accent); }
.send { background: var(--_accent); color: #fff; }
.send:disabled { opacity: 0.5; cursor: default; }
.stop { background: var(--_bg); color: var(--_accent); }
/* Markdown beyond paragraphs and lists. */
.bubble a { color: var(--_accent); text-decoration: underline; }
.bubble h1, .bubble h2, .bubble h3, .bubble h4, .bubble h5, .bubble h6 { font-size: 14px; margin: 8px 0 4px; }
.bubble blockquote { margin: 6px 0 0; padding-left: 10px; border-left: 3px solid var(--_line); color: var(--_muted); }
.bubble > table { display: block; max-width: 100%; overflow-x: auto; margin-top: 6px; }
.bubble table, .view table.data, .confirm table.data { border-collapse: collapse; font-size: 13px; }
.bubble th, .bubble td { border: 1px solid var(--_line); padding: 3px 8px; text-align: left; }
.bubble th { background: color-mix(in srgb, var(--_fg) 6%, transparent); font-weight: 600; }
.bubble .align-right { text-align: right; font-variant-numeric: tabular-nums; }
.bubble .align-center { text-align: center; }
/* Views of tool results: tables, charts and KPI cards under their tool line. */
.tool-item { display: flex; flex-direction: column; gap: 6px; align-self: stretch; min-width: 0; }
.view { margin: 0; padding: 10px; border: 1px solid var(--_line); border-radius: 10px; background: var(--_bg); min-width: 0; }
.view figcaption { font-weight: 650; font-size: 13px; margin-bottom: 6px; }
.table-box { max-height: 280px; overflow: auto; border-radius: 6px; }
.table-box:focus-visible { outline: 2px solid var(--_accent); }
table.data th, table.data td { padding: 4px 8px; text-align: left; white-space: nowrap; border-bottom: 1px solid var(--_line); }
table.data th { position: sticky; top: 0; z-index: 1; background: var(--_soft); font-weight: 600; color: var(--_fg); }
table.data .num { text-align: right; font-variant-numeric: tabular-nums; }
table.data th button { all: unset; cursor: pointer; display: inline-flex; gap: 4px; align-items: center; }
table.data th button:focus-visible { outline: 2px solid var(--_accent); outline-offset: 2px; }
table.data th button::after { content: "↕"; opacity: 0.35; font-size: 11px; }
table.data th[aria-sort="ascending"] button::after { content: "▲"; opacity: 0.8; }
table.data th[aria-sort="descending"] button::after { content: "▼"; opacity: 0.8; }
.chart-box { position: relative; height: 220px; }
.chart-box[data-chart="pie"] { height: 240px; }
.metrics { display: grid; grid-template-columns: repeat(auto-fill, minmax(140px, 1fr)); gap: 8px; margin: 0; }
.metric { padding: 8px 10px; border-radius: 8px; background: var(--_soft); }
.metric dt { font-size: 12px; color: var(--_muted); }
.metric dd { margin: 0; }
.metric .value { font-size: 18px; font-weight: 650; font-variant-numeric: tabular-nums; overflow-wrap: anywhere; }
.metric .hint { font-size: 12px; color: var(--_muted); }
.view-footer { display: flex; gap: 12px; justify-content: space-between; align-items: center; margin-top: 6px; font-size: 12px; color: var(--_muted); }
.view-footer .link-button { margin-left: auto; }
.visually-hidden { position: absolute !important; width: 1px; height: 1px; padding: 0; margin: -1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; border: 0; }
/* Params of a confirmation: a table or nested record goes under its label, full width. */
.confirm dt.wide, .confirm dd.wide { grid-column: 1 / -1; }
.confirm dd.wide { overflow-x: auto; }
.confirm dl.nested { margin: 0; }
.confirm table.data td, .confirm table.data th { padding: 3px 6px; }
/* Profiles: the switcher of a new conversation, the profile in the header, hand-off notes. */
.profile-bar { display: flex; gap: 8px; align-items: center; padding: 8px 16px; border-bottom: 1px solid var(--_line); font-size: 13px; }
.profile-bar label { color: var(--_muted); }
.profile-bar select { flex: 1; min-width: 0; font: inherit; color: inherit; background: var(--_bg); border: 1px solid var(--_line); border-radius: 8px; padding: 4px 6px; }
.profile-bar select:focus-visible { outline: 2px solid var(--_accent); outline-offset: 1px; }
.profile-label { font-weight: 600; color: var(--_fg); max-width: 100%; overflow: hidden; text-overflow: ellipsis; }
.empty .greeting { color: var(--_fg); }
.empty .description { font-size: 13px; }
.note { align-self: center; max-width: 92%; font-size: 12.5px; color: var(--_muted); text-align: center; padding: 4px 10px; border-radius: 999px; background: var(--_soft); }
.note::before { content: "⇄ "; }
/* Cited sources: superscript markers in the answer, chips under it. */
sup.cite { line-height: 0; }
.cite-ref { border: none; padding: 0 4px; margin: 0 1px; border-radius: 6px; font-size: 10.5px; font-weight: 650; line-height: 1.4; background: color-mix(in srgb, var(--_accent) 14%, transparent); color: var(--_accent); }
.cite-ref:hover { background: var(--_accent); color: #fff; }
.sources { list-style: none; margin: 6px 0 0; padding: 0; display: flex; flex-direction: column; gap: 4px; font-size: 12.5px; }
.source { display: grid; grid-template-columns: auto 1fr auto; gap: 0 6px; align-items: baseline; padding: 4px 8px; border: 1px solid var(--_line); border-radius: 8px; background: var(--_bg); }
.source-n { font-weight: 650; color: var(--_accent); }
.source-title { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
a.source-title { color: var(--_accent); }
.source-toggle { border: none; background: none; padding: 0 4px; color: var(--_muted); border-radius: 4px; }
.source-toggle:hover { background: var(--_soft); color: var(--_fg); }
.source .snippet { grid-column: 1 / -1; margin: 4px 0 2px; padding-left: 8px; border-left: 3px solid var(--_line); color: var(--_muted); white-space: pre-wrap; }
/* The host app that runs an action, and the warning on a destructive one. */
.confirm .title .via { margin-left: 6px; text-transform: none; letter-spacing: 0; padding: 0 6px; border-radius: 6px; background: var(--_soft); }
.confirm .warning { margin: 0 0 8px; padding: 6px 8px; border-radius: 8px; font-size: 13px; font-weight: 600; background: #fdecea; color: var(--_bad); }
.confirm.destructive { border-color: color-mix(in srgb, var(--_bad) 45%, transparent); }
.confirm.destructive .approve { background: var(--_bad); border-color: var(--_bad); }
/* The conversations list: over the transcript while open; a dot marks unseen activity. */
.conversations { flex: 1; overflow-y: auto; padding: 6px 8px; border-bottom: 1px solid var(--_line); }
.conversations ul { list-style: none; margin: 0; padding: 0; }
.conversations li { display: flex; align-items: center; gap: 8px; padding: 2px 0; font-size: 13px; }
.conversations li .link-button { font-size: 12px; color: var(--_muted); }
.conversation-open { flex: 1; min-width: 0; display: flex; align-items: center; gap: 6px; text-align: left; border: none; background: transparent; padding: 6px 8px; border-radius: 8px; color: var(--_fg); }
.conversation-open:hover, .conversation-open[aria-current="true"] { background: var(--_soft); }
.conversation-title { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
li[data-unread] .conversation-title { font-weight: 650; }
.unread, .icon-button[data-unread]::after { width: 8px; height: 8px; flex: none; border-radius: 50%; background: var(--_accent); }
.icon-button[data-unread] { position: relative; }
.icon-button[data-unread]::after { content: ""; position: absolute; top: 5px; right: 5px; }
.tag { flex: none; font-size: 11px; padding: 0 6px; border-radius: 6px; background: var(--_soft); color: var(--_muted); }
.conversations form.rename { flex: 1; display: flex; gap: 6px; }
.conversations form.rename input { flex: 1; min-width: 0; font: inherit; padding: 4px 6px; border: 1px solid var(--_line); border-radius: 6px; }
.conversations-empty { color: var(--_muted); font-size: 13px; margin: 8px; }
.panel:has(.conversations:not([hidden])) .log { display: none; }
/* Talk to a person, and the line saying a person was asked. */
.escalation { display: flex; align-items: center; gap: 8px; padding: 4px 16px; font-size: 12.5px; border-bottom: 1px solid var(--_line); }
.escalation .link-button { margin-left: auto; }
.escalated { margin: 0; color: var(--_muted); }
/* Editing an action's params on its card. */
.confirm .param-form { display: grid; gap: 6px; margin: 0 0 10px; font-size: 13px; }
.confirm .param-edit { display: grid; grid-template-columns: minmax(90px, max-content) 1fr; gap: 8px; align-items: center; }
.confirm .param-edit label { color: var(--_muted); }
.confirm .param-edit input[type="text"], .confirm .param-edit input[type="date"] { font: inherit; padding: 4px 6px; border: 1px solid var(--_line); border-radius: 6px; min-width: 0; }
.confirm .card-error { margin: 0 0 8px; padding: 6px 8px; border-radius: 8px; font-size: 13px; background: #fdecea; color: var(--_bad); }
.confirm .buttons { flex-wrap: wrap; }
.confirm .buttons .edit { flex: 0 1 auto; background: transparent; border: 1px solid var(--_line); color: var(--_fg); }
@media (max-width: 480px) {
  :host { right: 12px; bottom: 12px; }
  :host([open]) { inset: 0; }
  :host([open]) .panel { position: fixed; inset: 0; width: auto; height: auto; border-radius: 0; border: none; }
}
@media (prefers-reduced-motion: reduce) {
  .dots span, .msg[data-status="streaming"] .bubble::after { animation: none; }
}
`;
