"""The worked sessions in README.md and docs/protocol.md are real: each is replayed against a
running server (the demo ERP tools, the scripted dev model, default settings) and has to match,
frame by frame, what that server sends.

A session is the fenced block after a ``<!-- transcript ... -->`` line. Its lines are:

* ``> `` (README) or ``C> `` (protocol.md): a frame the client sends. It is sent exactly as
  written, except that a string ending in ``…`` is filled in: with the value of the same key in
  the last server frame that had one (the confirmation token), or, for ``hello``'s token, with
  what the block's ``parley token`` command prints.
* ``< `` or ``S< ``: a frame the server sends, compact JSON as on the wire, wrapped after a
  comma onto lines indented by four spaces.
* a line starting with ``…``: more ``response_delta`` frames. How many pieces an answer streams
  in depends on timing (the dev model's token rate against ``PARLEY_DELTA_FLUSH_MS``), so a
  block shows the first two and the last one, whose ``seq`` is ``N``; later frames are ``N+1``…
* anything else (the shell commands and what they print) is left alone.

Values that differ from run to run are shown as a prefix and ``…``: ids as ``c_…``, the epoch
and confirmation tokens (also those listed in ``turn_end.awaiting``) as ``…``. Dates and
token counts are shown as a real run had them and compared loosely: any date, any token counts.

Every frame a block shows must equal the live one field for field, in the same key order, seq
included, once both sides are normalised that way. The elided run must be one run of deltas
of the same turn and message whose text starts with the block's first deltas and ends with its
last one: batching only ever joins pieces, so this holds however many frames the run took.

After changing what the server sends, rewrite the blocks from a real run with
``.venv/bin/python -m tests.server.test_docs_transcripts``. Frames that still match are kept as
they are; ``--fresh`` rewrites them too, with today's dates and token counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import websockets

from tests.server.harness import ParleyServer, ServerConfig

REPO = Path(__file__).resolve().parents[2]
MARKER = "<!-- transcript:"
WIDTH = 100  # wrap server frames at this many characters, like the prose around them
INDENT = "    "
ELLIPSIS = "…"
ELISION = "… more response_delta frames, one per piece of the answer as it streams, up to seq N …"
# The token the README's shell commands make; a block without such a command uses it too.
TOKEN_COMMAND = "PARLEY_DEV=1 .venv/bin/parley token --user alice --tenant acme --roles admin"
# A client frame is answered once one of these arrives (and nothing follows for SETTLE_S).
EXCHANGE_ENDS = frozenset({"ready", "confirm_request", "turn_end", "error"})
SETTLE_S = 0.5
FRAME_TIMEOUT_S = 20.0

ID_KEYS = frozenset(
    {"connection_id", "conversation_id", "message_id", "turn_id", "call_id", "audit_id"}
)
RANDOM_KEYS = frozenset({"epoch", "token"})
# Keys whose value is a list of confirmation tokens (``turn_end.awaiting``).
TOKEN_LIST_KEYS = frozenset({"awaiting"})
EXPORT_PATH = re.compile(r"(/exports/[^/_]+_)[^/]*(\.csv)$")
COUNT_KEYS = frozenset({"prompt_tokens", "completion_tokens", "total_tokens"})
DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z)?")
SEQ_PLACEHOLDER = re.compile(r'"seq":"?(N(?:\+\d+)?)\b"?')


@dataclass(frozen=True)
class Transcript:
    """Where a doc keeps its sessions and how it marks the two directions."""

    doc: str  # path from the repository root
    client: str
    server: str

    @property
    def path(self) -> Path:
        return REPO / self.doc


TRANSCRIPTS = [
    Transcript("README.md", client="> ", server="< "),
    Transcript("docs/protocol.md", client="C> ", server="S< "),
]

# -- reading a block ---------------------------------------------------------------------------


@dataclass
class Sent:
    """A frame the client sends, as written."""

    lines: list[str]
    text: str = ""


@dataclass
class Shown:
    """A frame the server sends, as the doc shows it (``seq`` may be ``"N"`` or ``"N+k"``)."""

    lines: list[str]
    frame: dict[str, Any] = field(default_factory=dict)


@dataclass
class Elided:
    """The line standing for the response_delta frames a block leaves out."""

    lines: list[str]


@dataclass
class Other:
    """Any other line: shell commands and what they print."""

    lines: list[str]


Item = Sent | Shown | Elided | Other


@dataclass
class Block:
    """One fenced session block of a doc: its line range and what it says."""

    start: int  # index of the first line inside the fence
    end: int  # index of the closing fence
    items: list[Item]

    def sends(self) -> list[Sent]:
        return [item for item in self.items if isinstance(item, Sent)]

    def segments(self) -> list[list[Shown | Elided]]:
        """The server lines that follow each client frame, up to the next one."""
        segments: list[list[Shown | Elided]] = []
        for item in self.items:
            if isinstance(item, Sent):
                segments.append([])
            elif isinstance(item, Shown | Elided):
                assert segments, "a block shows server frames before the client's first frame"
                segments[-1].append(item)
        return segments

    def token_command(self) -> tuple[str, str]:
        """The ``parley token`` command the block runs and the start of what it printed."""
        lines = [line for item in self.items if isinstance(item, Other) for line in item.lines]
        for index, line in enumerate(lines):
            if line.startswith("$ ") and " parley token " in line:
                return line[2:], lines[index + 1].removesuffix(ELLIPSIS)
        return TOKEN_COMMAND, ""


def read_blocks(transcript: Transcript) -> list[Block]:
    lines = transcript.path.read_text("utf-8").split("\n")
    blocks = []
    for index, line in enumerate(lines):
        if line.startswith(MARKER):
            assert lines[index + 1].startswith("```"), f"{transcript.doc}:{index + 2}: no fence"
            start = index + 2
            end = lines.index("```", start)
            blocks.append(Block(start, end, parse(lines[start:end], transcript)))
    return blocks


def parse(lines: list[str], transcript: Transcript) -> list[Item]:
    items: list[Item] = []
    for line in lines:
        continues = line.startswith(INDENT) and line.lstrip().startswith('"')
        if continues and items and isinstance(items[-1], Sent | Shown):
            items[-1].lines.append(line)
        elif line.startswith(transcript.client):
            items.append(Sent([line]))
        elif line.startswith(transcript.server):
            items.append(Shown([line]))
        elif line.lstrip().startswith(ELLIPSIS):
            items.append(Elided([line]))
        else:
            items.append(Other([line]))
    for item in items:
        if isinstance(item, Sent):
            item.text = _joined(item.lines, transcript.client)
        elif isinstance(item, Shown):
            text = SEQ_PLACEHOLDER.sub(r'"seq":"\1"', _joined(item.lines, transcript.server))
            item.frame = json.loads(text)
    return items


def _joined(lines: list[str], prefix: str) -> str:
    return lines[0].removeprefix(prefix) + "".join(line.lstrip() for line in lines[1:])


# -- normalising frames ------------------------------------------------------------------------


def shortened(value: Any, key: str | None = None) -> Any:
    """``value`` with its ids, epoch and tokens shown as the docs show them."""
    if isinstance(value, dict):
        return {name: shortened(item, name) for name, item in value.items()}
    if isinstance(value, list):
        return [shortened(item, "token" if key in TOKEN_LIST_KEYS else None) for item in value]
    if isinstance(value, str) and key in ID_KEYS:
        return value.partition("_")[0] + "_" + ELLIPSIS
    if isinstance(value, str) and key in RANDOM_KEYS:
        return ELLIPSIS
    if isinstance(value, str) and key == "export":
        # The CSV's path names the tool call: shortened as the call id is.
        return EXPORT_PATH.sub(rf"\1{ELLIPSIS}\2", value)
    return value


def normalised(value: Any, key: str | None = None) -> Any:
    """``shortened(value)`` with dates and token counts replaced by what they stand for."""
    value = shortened(value, key)
    if isinstance(value, dict):
        return {name: normalised(item, name) for name, item in value.items()}
    if isinstance(value, list):
        return [normalised(item) for item in value]
    if isinstance(value, str):
        return normalised_text(value)
    if key in COUNT_KEYS and isinstance(value, int) and not isinstance(value, bool):
        return "<count>"
    return value


def normalised_text(text: str) -> str:
    return DATE.sub(lambda match: "<time>" if "T" in match.group() else "<date>", text)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# -- comparing a block with a live session -----------------------------------------------------

Frame = dict[str, Any]


@dataclass
class Run:
    """A run of response_delta frames: every one live; in a doc, those around the elision."""

    leading: list[Frame] = field(default_factory=list)
    trailing: list[Frame] = field(default_factory=list)
    elided: bool = False

    def add(self, frame: Frame | None) -> None:
        if frame is None:
            self.elided = True
        else:
            (self.trailing if self.elided else self.leading).append(frame)

    @property
    def frames(self) -> list[Frame]:
        return self.leading + self.trailing

    def text(self, frames: list[Frame] | None = None) -> str:
        frames = self.frames if frames is None else frames
        return normalised_text("".join(frame["delta"] for frame in frames))

    def summary(self) -> str:
        """What a run agrees on however many frames it took: where it starts, and its fields."""
        if not self.frames:
            return "an elision with no response_delta frames around it"
        fields = [
            normalised({key: value for key, value in frame.items() if key not in ("seq", "delta")})
            for frame in self.frames
        ]
        same = fields[0] if all(item == fields[0] for item in fields) else "differing fields"
        return f"response_delta from seq {self.frames[0].get('seq')} to N: {_dumps(same)}"


@dataclass
class Canonical:
    """A session as the comparison sees it: per client frame, one line per answer frame."""

    segments: list[list[str]]
    run: Run | None
    run_segment: int | None


def canonical(segments: list[list[Frame | None]]) -> Canonical:
    """``segments`` (the server frames after each client frame; ``None`` for an elision)
    normalised, each run of deltas made one line, and the seqs after it counted from ``N``."""
    out = Canonical([], None, None)
    for index, segment in enumerate(segments):
        lines: list[str] = []
        current: Run | None = None
        for frame in segment:
            if frame is None or frame["type"] == "response_delta":
                if current is None:
                    assert out.run is None, "a session shows one streamed answer"
                    current = out.run = Run()
                    out.run_segment = index
                current.add(frame)
                continue
            if current is not None:
                lines.append(current.summary())
                current = None
            if out.run is not None and isinstance(frame.get("seq"), int):
                last = out.run.frames[-1]["seq"]
                if isinstance(last, int):
                    frame = {**frame, "seq": f"N+{frame['seq'] - last}"}
            lines.append(_dumps(normalised(frame)))
        if current is not None:
            lines.append(current.summary())
        out.segments.append(lines)
    return out


def run_problems(shown: Run, live: Run) -> list[str]:
    """How the run a doc shows disagrees with the live one, beyond their summaries."""
    problems = []
    if not shown.elided or len(shown.trailing) != 1 or shown.trailing[0]["seq"] != "N":
        problems.append("a doc shows a run of deltas as its first ones, `…`, and seq N")
    first = live.frames[0]["seq"]
    seqs = [frame["seq"] for frame in shown.leading]
    if seqs != list(range(first, first + len(seqs))):
        problems.append(f"the doc's first deltas have seqs {seqs}; live they start at {first}")
    head, tail, text = shown.text(shown.leading), shown.text(shown.trailing), live.text()
    if not (text.startswith(head) and text.endswith(tail) and len(head) + len(tail) <= len(text)):
        problems.append(f"the answer streamed was {text!r}: not {head!r} … {tail!r}")
    return problems


def shown_segments(block: Block) -> list[list[Frame | None]]:
    return [
        [item.frame if isinstance(item, Shown) else None for item in segment]
        for segment in block.segments()
    ]


def differences(block: Block, exchanges: list[list[Frame]]) -> list[str]:
    """Every way ``block`` disagrees with the live session ``exchanges``; empty if none."""
    shown, live = canonical(shown_segments(block)), canonical(list(exchanges))
    problems = []
    if shown.segments != live.segments:
        diff = difflib.unified_diff(_flat(shown), _flat(live), "doc", "live", lineterm="", n=1)
        problems.append("\n".join(diff))
    if shown.run is not None and live.run is not None:
        problems += run_problems(shown.run, live.run)
    return problems


def _flat(session: Canonical) -> list[str]:
    return [
        line for index, lines in enumerate(session.segments) for line in [f"-- {index}", *lines]
    ]


def live_problems(exchanges: list[list[Frame]]) -> list[str]:
    """Rules of the protocol the sessions illustrate, checked on what the server sent."""
    frames = [frame for exchange in exchanges for frame in exchange]
    problems = []
    start = frames[0].get("last_seq", 0) + 1
    seqs = [frame["seq"] for frame in frames if "seq" in frame]
    if seqs != list(range(start, start + len(seqs))):
        problems.append(f"logged frames are not numbered {start}, {start + 1}, …: {seqs}")
    for frame in frames:
        if frame["type"] == "response":
            # Each answer is the deltas of its own message (an asking turn may stream none).
            streamed = "".join(
                delta["delta"]
                for delta in frames
                if delta["type"] == "response_delta" and delta["message_id"] == frame["message_id"]
            )
            if frame["text"] != streamed:
                problems.append(f"the deltas joined {streamed!r} differ from {frame['text']!r}")
            usage = frame["usage"]
            if usage["total_tokens"] != usage["prompt_tokens"] + usage["completion_tokens"]:
                problems.append(f"token counts do not add up: {usage}")
    return problems


# -- writing a block from a live session -------------------------------------------------------


def rendered(frame: Frame, prefix: str, seq: str | int | None) -> list[str]:
    """The lines a doc shows for ``frame``: shortened, compact, wrapped after commas (a
    string longer than a line keeps a line of its own)."""
    shown = shortened(frame)
    if seq is not None:
        shown["seq"] = seq
    text = SEQ_PLACEHOLDER.sub(r'"seq":\1', prefix + _dumps(shown))
    lines = [""]
    for piece in re.split(r'(?<=,)(?=")', text):  # `,"` never occurs inside a JSON string
        if lines[-1] and len(lines[-1]) + len(piece) > WIDTH:
            lines.append(INDENT)
        lines[-1] += piece
    return lines


def rendered_segments(exchanges: list[list[Frame]], prefix: str) -> list[list[str]]:
    deltas = [frame for exchange in exchanges for frame in exchange if _is_delta(frame)]
    if deltas and len(deltas) < 4:
        raise RuntimeError("the answer streamed in under four pieces; run again on a calm machine")
    last = deltas[-1]["seq"] if deltas else None
    position = {id(frame): index for index, frame in enumerate(deltas)}
    segments = []
    for exchange in exchanges:
        lines: list[str] = []
        for frame in exchange:
            seq, nth_delta = frame.get("seq"), position.get(id(frame))
            if nth_delta == len(deltas) - 1:
                lines += [ELISION, *rendered(frame, prefix, "N")]
            elif nth_delta is not None and nth_delta >= 2:
                continue  # the middle of the run, left out
            elif last is not None and isinstance(seq, int) and seq > last:
                lines += rendered(frame, prefix, f"N+{seq - last}")
            else:
                lines += rendered(frame, prefix, seq)
        segments.append(lines)
    return segments


def _is_delta(frame: Frame) -> bool:
    return bool(frame["type"] == "response_delta")


def rewritten(
    block: Block, exchanges: list[list[Frame]], transcript: Transcript, *, fresh: bool
) -> list[str]:
    """The lines of ``block`` with its server frames taken from ``exchanges``; the frames
    after a client frame are kept as they were when they still match, unless ``fresh``."""
    shown, live = canonical(shown_segments(block)), canonical(list(exchanges))
    run_ok = not (shown.run and live.run and run_problems(shown.run, live.run))
    new = rendered_segments(exchanges, transcript.server)
    old = block.segments()
    lines: list[str] = []
    index = -1
    for item in block.items:
        if isinstance(item, Sent):
            index += 1
            same = shown.segments[index] == live.segments[index]
            keep = same and (run_ok or index not in (shown.run_segment, live.run_segment))
            lines += item.lines
            lines += (
                [line for entry in old[index] for line in entry.lines]
                if keep and not fresh
                else new[index]
            )
        elif isinstance(item, Other):
            lines += item.lines
    return lines


# -- running a session -------------------------------------------------------------------------

DEV_SECRET = "dev-secret"


def start_server(tmp: Path) -> ParleyServer:
    """Parley as ``scripts/serve`` runs it: ``parley serve`` in dev mode, which starts the demo
    ERP app and reaches it as the tool source ``erp``; the in-process dev model, default
    settings, and tokens checked with the dev secret ``parley token`` signs with.
    """
    config = ServerConfig(
        database_url=f"sqlite+aiosqlite:///{tmp / 'parley.db'}",
        extra={
            "PARLEY_JWT_SECRET": "",
            "PARLEY_DEV_SECRET_FILE": str(tmp / DEV_SECRET),
            "PARLEY_DEV_SIGNING_KEY_FILE": str(tmp / "dev-signing-key.pem"),
            "PARLEY_DEMO_ERP": "host",
        },
    )
    return ParleyServer(tmp, config, process=True)


def issue_token(command: str, tmp: Path) -> str:
    """Run a block's ``parley token`` command line; the token it prints."""
    words = shlex.split(command)
    env = {key: value for key, value in os.environ.items() if not key.startswith("PARLEY_")}
    while "=" in words[0]:
        name, _, value = words.pop(0).partition("=")
        env[name] = value
    assert words[0] == ".venv/bin/parley", command
    env["PARLEY_DEV_SECRET_FILE"] = str(tmp / DEV_SECRET)
    env["PYTHONPATH"] = str(REPO)
    done = subprocess.run(
        [sys.executable, "-m", "server.cli", *words[1:]],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip()


async def replay(ws_url: str, block: Block, token: str) -> list[list[Frame]]:
    """Send the block's client frames one by one; the server frames that answered each."""
    exchanges: list[list[Frame]] = []
    async with websockets.connect(ws_url, open_timeout=10) as ws:
        for sent in block.sends():
            seen = [frame for exchange in exchanges for frame in exchange]
            await ws.send(filled(sent.text, seen, token))
            frames: list[Frame] = []
            while not frames or frames[-1]["type"] not in EXCHANGE_ENDS:
                frames.append(json.loads(await asyncio.wait_for(ws.recv(), FRAME_TIMEOUT_S)))
            with contextlib.suppress(TimeoutError):  # anything that still follows belongs here
                while True:
                    frames.append(json.loads(await asyncio.wait_for(ws.recv(), SETTLE_S)))
            exchanges.append(frames)
    return exchanges


def filled(text: str, seen: list[Frame], token: str) -> str:
    """``text`` with each ``…`` placeholder replaced by the live value it stands for."""
    for key, value in json.loads(text).items():
        if isinstance(value, str) and value.endswith(ELLIPSIS):
            values = [frame[key] for frame in seen if key in frame]
            if values:
                live = values[-1]
            elif key == "token":  # hello's: what the block's `parley token` printed
                live = token
            else:
                raise AssertionError(f"nothing the server sent gives {key!r} in {text}")
            placeholder = json.dumps(value, ensure_ascii=False)
            assert placeholder in text, text
            text = text.replace(placeholder, json.dumps(live))
    return text


@dataclass
class Recorded:
    """A doc's session block and what a real server answered to it."""

    transcript: Transcript
    block: Block
    printed_token: str  # the start of the token the block shows its command printing
    token: str
    exchanges: list[list[Frame]]


def record(transcript: Transcript, block: Block, tmp: Path) -> Recorded:
    command, printed = block.token_command()
    server = start_server(tmp)
    try:
        token = issue_token(command, tmp)
        exchanges = asyncio.run(replay(server.ws_url, block, token))
    finally:
        server.stop()
    return Recorded(transcript, block, printed, token, exchanges)


# -- tests -------------------------------------------------------------------------------------

# Each session runs against `parley serve` and the demo ERP app: processes, the full run's.
pytestmark = pytest.mark.slow

HINT = (
    "rewrite the block from a real run with: .venv/bin/python -m tests.server.test_docs_transcripts"
)


@pytest.fixture(scope="module", params=TRANSCRIPTS, ids=lambda transcript: transcript.doc)
def recorded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    """Each doc's session, replayed once against a server of its own."""
    transcript: Transcript = request.param
    blocks = read_blocks(transcript)
    assert len(blocks) == 1, f"{transcript.doc} should hold one session block"
    return record(transcript, blocks[0], tmp_path_factory.mktemp("transcript"))


def test_the_token_command_prints_a_token_like_the_one_shown(recorded: Recorded) -> None:
    assert recorded.token.startswith(recorded.printed_token)


def test_the_session_keeps_the_rules_it_illustrates(recorded: Recorded) -> None:
    assert live_problems(recorded.exchanges) == []


def test_every_frame_the_doc_shows_is_what_the_server_sent(recorded: Recorded) -> None:
    problems = differences(recorded.block, recorded.exchanges)
    assert not problems, f"{recorded.transcript.doc} is out of date; {HINT}\n" + "\n".join(problems)


def test_a_block_rewritten_from_the_session_reads_back_the_same(recorded: Recorded) -> None:
    lines = rewritten(recorded.block, recorded.exchanges, recorded.transcript, fresh=True)
    reread = Block(0, len(lines), parse(lines, recorded.transcript))
    assert differences(reread, recorded.exchanges) == []


def test_a_frame_changed_dropped_or_added_is_noticed(recorded: Recorded) -> None:
    exchanges = recorded.exchanges
    summaries = [frame for exchange in exchanges for frame in exchange if "summary" in frame]
    assert summaries, "the session shows what a tool or an action is about"
    changed = [
        [{**frame, "summary": "changed"} if frame is summaries[0] else frame for frame in exchange]
        for exchange in exchanges
    ]
    dropped = [exchange[:-1] for exchange in exchanges]
    added = [[*exchange, exchange[-1]] for exchange in exchanges]
    for other in (changed, dropped, added):
        assert differences(recorded.block, other)


def main() -> None:
    fresh = "--fresh" in sys.argv[1:]
    for transcript in TRANSCRIPTS:
        lines = transcript.path.read_text("utf-8").split("\n")
        for block in reversed(read_blocks(transcript)):  # from the end, so indices stay valid
            with tempfile.TemporaryDirectory() as tmp:
                session = record(transcript, block, Path(tmp))
            new = rewritten(block, session.exchanges, transcript, fresh=fresh)
            reread = Block(0, len(new), parse(new, transcript))
            assert differences(reread, session.exchanges) == [], "the rewritten block is wrong"
            lines[block.start : block.end] = new
        text = "\n".join(lines)
        if text != transcript.path.read_text("utf-8"):
            transcript.path.write_text(text, "utf-8")
            print(f"rewrote the session in {transcript.doc}", file=sys.stderr)


if __name__ == "__main__":
    main()
