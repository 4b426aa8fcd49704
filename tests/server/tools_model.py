"""The scripted dev model with a script of the tool-source tests' own, as a process
(``python -m tests.server.tools_model --port N``): Parley's real devllm app, other rules."""

from __future__ import annotations

import argparse

from server.devllm.script import CallTemplate, Rule, Script
from server.devllm.serve import run

SCRIPT = Script(
    [
        Rule(
            r"thing (?P<id>[\w-]+)",
            calls=[CallTemplate("host__get_thing", {"thing_id": r"\g<id>"}, purpose="look it up")],
        ),
        Rule(
            r"approve (?P<po>PO-\d+)",
            calls=[
                CallTemplate(
                    "host__approve_order",
                    {"po_number": r"\g<po>", "comment": "fine"},
                    purpose=r"approve \g<po>",
                )
            ],
        ),
        Rule(r"big report", calls=[CallTemplate("host__get_big", {})]),
        Rule(r"salaries", calls=[CallTemplate("host__get_salaries", {})]),
    ],
    fallback="I have no rule for that.",
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    run(port=args.port, script=SCRIPT, token_rate=0.0)


if __name__ == "__main__":
    main()
