"""The dev model's script, answers and fault rules, without any I/O."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import pytest

from server.devllm import tokens, wire
from server.devllm.answers import ToolResult, answer_tool_results
from server.devllm.default_script import default_script
from server.devllm.faults import (
    FaultKind,
    FaultSpecError,
    parse_fault_rules,
    plan_faults,
    take_markers,
)
from server.devllm.script import (
    CallTemplate,
    Conversation,
    Rule,
    Script,
    conversation_from_messages,
)


def ask(script: Script, text: str, offered: set[str] | frozenset[str] = frozenset()) -> Any:
    return script.reply(
        Conversation(user_text=text, tool_results=(), offered_tools=frozenset(offered))
    )


# -- rules ---------------------------------------------------------------------------------------


def test_text_and_arguments_reference_groups() -> None:
    script = Script(
        [
            Rule(
                r"find (?P<what>\w+) in (\w+)",
                text=r"Looking for \g<what> in \2.",
                calls=(CallTemplate("search", {"query": r"\g<what>", "where": [r"\2"], "n": 3}),),
            )
        ],
        fallback="?",
    )
    reply = ask(script, "please find invoices in March", {"search"})
    assert reply.text == "Looking for invoices in March."
    assert [(call.name, json.loads(call.arguments)) for call in reply.calls] == [
        ("search", {"query": "invoices", "where": ["March"], "n": 3})
    ]


def test_first_matching_rule_wins_and_fallback_answers_the_rest() -> None:
    script = Script([Rule("one", text="first"), Rule("one|two", text="second")], fallback="?")
    assert ask(script, "one").text == "first"
    assert ask(script, "two").text == "second"
    assert ask(script, "three").text == "?"


def test_combining_rules_gather_every_match() -> None:
    script = Script(
        [
            Rule("a", calls=(CallTemplate("tool_a"),), combine=True),
            Rule("b", text="not combined"),
            Rule("c", calls=(CallTemplate("tool_c"),), combine=True),
            Rule("a", calls=(CallTemplate("tool_a"),), combine=True),  # a duplicate call
        ],
        fallback="?",
    )
    reply = ask(script, "a b c", {"tool_a", "tool_c"})
    assert [call.name for call in reply.calls] == ["tool_a", "tool_c"]
    assert reply.text == ""


def test_a_tool_not_offered_is_explained_instead_of_called() -> None:
    script = Script(
        [
            Rule(
                r"delete (\w+)", calls=(CallTemplate("delete", {"x": r"\1"}, purpose=r"delete \1"),)
            )
        ],
        fallback="?",
    )
    reply = ask(script, "delete everything", offered={"other"})
    assert reply.calls == ()
    assert reply.text.startswith("I can't delete everything here")
    assert "no delete tool" in reply.text


def test_ignore_offered_tools_calls_anyway_with_raw_arguments() -> None:
    script = Script(
        [
            Rule(
                re.compile(r"^x (\w+) (.*)$"),
                calls=(CallTemplate(r"\1", raw_arguments=r"\2"),),
                ignore_offered_tools=True,
            )
        ],
        fallback="?",
    )
    reply = ask(script, 'x ghost {"broken": ')
    assert [(call.name, call.arguments) for call in reply.calls] == [("ghost", '{"broken": ')]


def test_tool_rules_match_the_last_tool_result() -> None:
    script = Script(
        [Rule(r'"status": "pending"', on="tool", calls=(CallTemplate("poll"),))], fallback="?"
    )
    pending = Conversation("", (ToolResult("job", '{"status": "pending"}'),), frozenset({"poll"}))
    done = Conversation("", (ToolResult("job", '{"status": "done"}'),), frozenset({"poll"}))
    assert [call.name for call in script.reply(pending).calls] == ["poll"]
    assert script.reply(done).text == "Job: status: done."


def test_conversation_reads_trailing_tool_results_with_their_names() -> None:
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": [{"type": "text", "text": "cash and dashboard"}]},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "cash_balance"}},
                {"id": "c2", "type": "function", "function": {"name": "dashboard_summary"}},
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "{}"},
        {"role": "tool", "tool_call_id": "c2", "content": "[]"},
    ]
    tools = [{"type": "function", "function": {"name": "cash_balance", "parameters": {}}}]
    conversation = conversation_from_messages(messages, tools)
    assert conversation.user_text == "cash and dashboard"
    assert conversation.offered_tools == {"cash_balance"}
    assert [(r.name, r.content) for r in conversation.tool_results] == [
        ("cash_balance", "{}"),
        ("dashboard_summary", "[]"),
    ]
    assert conversation_from_messages(messages[:2], []).tool_results == ()


# -- the default script --------------------------------------------------------------------------

ERP_PROMPTS: list[tuple[str, str, dict[str, Any]]] = [
    ("what's our cash balance?", "cash_balance", {}),
    ("show overdue purchase orders", "list_purchase_orders", {"overdue": True}),
    (
        "show purchase orders from Acme Supplies",
        "list_purchase_orders",
        {"supplier": "Acme Supplies"},
    ),
    (
        "Show purchase orders for Globex Parts?",
        "list_purchase_orders",
        {"supplier": "Globex Parts"},
    ),
    ("any pending approvals?", "pending_approvals", {}),
    ("ar aging please", "ar_aging", {}),
    ("how do our receivables look", "ar_aging", {}),
    ("AP aging", "ap_aging", {}),
    ("show payables", "ap_aging", {}),
    ("stock levels", "stock_levels", {}),
    ("what is below reorder?", "stock_levels", {"below_reorder": True}),
    ("open the dashboard", "dashboard_summary", {}),
    ("give me a summary", "dashboard_summary", {}),
    ("approve PO-1001", "approve_purchase_order", {"po_number": "PO-1001"}),
    ("Approve po 1001", "approve_purchase_order", {"po_number": "PO-1001"}),
    ("APPROVE PO1002 now", "approve_purchase_order", {"po_number": "PO-1002"}),
    (
        "reject PO-1003 because the price is too high.",
        "reject_purchase_order",
        {"po_number": "PO-1003", "reason": "the price is too high"},
    ),
    (
        "reject po 1004",
        "reject_purchase_order",
        {"po_number": "PO-1004", "reason": "No reason given"},
    ),
    (
        "create a sales order for Acme: 100 units of Widget at 50",
        "create_sales_order",
        {"customer": "Acme", "lines": [{"item": "Widget", "quantity": "100", "unit_price": "50"}]},
    ),
    (
        "Create sales order for Globex, 2 x Gadget @ 12.50; 3 units of Big Bolt at 1",
        "create_sales_order",
        {
            "customer": "Globex",
            "lines": [
                {"item": "Gadget", "quantity": "2", "unit_price": "12.50"},
                {"item": "Big Bolt", "quantity": "3", "unit_price": "1"},
            ],
        },
    ),
    ("create customer Initech", "create_customer", {"name": "Initech"}),
    (
        "add a new customer named Umbrella Corp with email ops@umbrella.example and credit "
        "limit 5000",
        "create_customer",
        {"name": "Umbrella Corp", "email": "ops@umbrella.example", "credit_limit": "5000"},
    ),
]


@pytest.mark.parametrize(("prompt", "tool", "arguments"), ERP_PROMPTS)
def test_default_script_calls_erp_tools(prompt: str, tool: str, arguments: dict[str, Any]) -> None:
    reply = ask(default_script(), prompt, {tool, "cash_balance"})
    assert [(call.name, json.loads(call.arguments)) for call in reply.calls] == [(tool, arguments)]
    assert reply.text == ""


@pytest.mark.parametrize(("prompt", "tool", "arguments"), ERP_PROMPTS)
def test_default_script_explains_a_missing_tool(
    prompt: str, tool: str, arguments: dict[str, Any]
) -> None:
    reply = ask(default_script(), prompt, {"some_other_tool"})
    assert reply.calls == ()
    assert f"no {tool} tool is available" in reply.text


# The demo ERP's tools as its host app offers them through the tool source "erp".
HOST_APP_TOOLS = frozenset(
    f"erp__{tool}"
    for tool in {tool for _, tool, _ in ERP_PROMPTS} | {"dashboard_summary", "ar_aging"}
)


@pytest.mark.parametrize(("prompt", "tool", "arguments"), ERP_PROMPTS)
def test_default_script_calls_a_tool_sources_tools(
    prompt: str, tool: str, arguments: dict[str, Any]
) -> None:
    reply = ask(default_script(), prompt, HOST_APP_TOOLS)
    assert [(call.name, json.loads(call.arguments)) for call in reply.calls] == [
        (f"erp__{tool}", arguments)
    ]
    assert reply.text == ""


def test_a_tools_own_name_wins_and_two_sources_leave_it_unoffered() -> None:
    script = default_script()
    both = {"cash_balance", "erp__cash_balance"}
    assert [c.name for c in ask(script, "cash balance", both).calls] == ["cash_balance"]
    # Two host apps serving the tool: which one is meant is not the script's guess to make.
    ambiguous = ask(script, "cash balance", {"erp__cash_balance", "books__cash_balance"})
    assert ambiguous.calls == ()
    assert "no cash_balance tool is available" in ambiguous.text
    # Only a whole "<source>__" prefix counts: "petty_cash_balance" is another tool.
    assert ask(script, "cash balance", {"petty_cash_balance"}).calls == ()


def test_answers_read_a_sources_tool_as_its_own_name() -> None:
    result = {"accounts": [{"name": "Operating", "balance": "10.00"}], "total": "10.00"}
    answer = answer_tool_results([ToolResult("erp__cash_balance", json.dumps(result))])
    # Without a currency the amounts are plain numbers, still with the locale's separators.
    assert answer.startswith("You have **10.00** in cash across 1 bank account.\n\n")
    assert "| Operating |  | 10.00 |" in answer
    refused = ToolResult("erp__approve_purchase_order", json.dumps({"error": "not pending"}))
    assert answer_tool_results([refused]) == (
        "Sorry, approve purchase order didn't go through: not pending."
    )


def test_default_script_combines_queries() -> None:
    script = default_script()
    reply = ask(script, "dashboard and cash balance", {"cash_balance", "dashboard_summary"})
    assert sorted(call.name for call in reply.calls) == ["cash_balance", "dashboard_summary"]
    partly = ask(script, "dashboard and cash balance", {"cash_balance"})
    assert [call.name for call in partly.calls] == ["cash_balance"]
    assert "no dashboard_summary tool" in partly.text


def test_default_script_talks() -> None:
    script = default_script()
    assert "scripted development model" in ask(script, "Hello!").text
    assert "approve PO-1001" in ask(script, "what can you do?").text
    about = ask(script, "are you a real model?").text
    for setting in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "PARLEY_MODEL"):
        assert setting in about
    fallback = ask(script, "sing me a song about turnips")
    assert fallback.calls == ()
    assert "show overdue purchase orders" in fallback.text
    assert "create a sales order" in ask(script, "create a sales order").text
    # A greeting in front of a question does not hide the question.
    assert [c.name for c in ask(script, "hi, what's our cash?", {"cash_balance"}).calls] == [
        "cash_balance"
    ]


def test_default_script_test_rules() -> None:
    script = default_script()
    assert ask(script, "[say] Exactly *this*,\nsecond line").text == (
        "Exactly *this*,\nsecond line"
    )
    reply = ask(script, "[call approve_purchase_order] {not json")
    assert [(c.name, c.arguments) for c in reply.calls] == [("approve_purchase_order", "{not json")]


# -- answers from tool results -------------------------------------------------------------------


def test_cash_balance_answer_is_a_sentence_and_a_table_in_the_tenants_locale() -> None:
    result = {
        "accounts": [
            {"name": "Geschäftskonto", "bank": "Sparkasse", "balance": "10500.00"},
            {"name": "Lohnkonto", "bank": "Sparkasse", "balance": "2000.5"},
        ],
        "total": "12500.50",
        "currency": "EUR",
        "locale": "de-DE",
    }
    answer = answer_tool_results([ToolResult("cash_balance", json.dumps(result))])
    assert answer == (
        "You have **12.500,50\xa0€** in cash across 2 bank accounts.\n\n"
        "| Account | Bank | Balance |\n"
        "| --- | --- | ---: |\n"
        "| Geschäftskonto | Sparkasse | 10.500,00\xa0€ |\n"
        "| Lohnkonto | Sparkasse | 2.000,50\xa0€ |"
    )
    american = {**result, "currency": "USD", "locale": "en-US"}
    answer = answer_tool_results([ToolResult("cash_balance", json.dumps(american))])
    assert answer.startswith("You have **$12,500.50** in cash")


def test_aging_answer_names_the_total_and_lists_the_most_overdue_documents() -> None:
    documents = [
        {
            "number": f"INV-{3000 + i}",
            "name": f"Customer | {i}",
            "due_date": "2026-06-30",
            "days_past_due": 1200 - i,
            "bucket": "90+",
            "open_amount": "1000.00",
        }
        for i in range(12)
    ]
    result = {
        "currency": "USD",
        "locale": "en-US",
        "total": "12000.00",
        "overdue": "12000.00",
        "open_documents": documents,
    }
    answer = answer_tool_results([ToolResult("erp__ar_aging", json.dumps(result))])
    lead, table, more = answer.split("\n\n")
    assert lead == (
        "Customers owe you **$12,000.00**, of which **$12,000.00** is overdue, on 12 open "
        "invoices. The most overdue first:"
    )
    lines = table.splitlines()
    assert lines[:2] == [
        "| Invoice | Customer | Due | Days past due | Open |",
        "| --- | --- | --- | ---: | ---: |",
    ]
    # A pipe in the data stays inside its cell; ten rows, the rest counted.
    assert lines[2] == "| INV-3000 | Customer \\| 0 | Jun 30, 2026 | 1,200 | $1,000.00 |"
    assert len(lines) == 2 + 10
    assert more == "…and 2 more; the CSV of the chart has every one."


def test_orders_by_status_answer_is_a_table_of_statuses() -> None:
    result = {
        "currency": "EUR",
        "locale": "de-DE",
        "period": {"name": "quarter", "from": "2026-10-01", "to": "2026-12-31"},
        "count": 3,
        "total": "1234.50",
        "statuses": [
            {"status": "awaiting_approval", "count": 2, "total": "1000.00"},
            {"status": "approved", "count": 1, "total": "234.50"},
        ],
        "purchase_orders": [],
    }
    answer = answer_tool_results([ToolResult("purchase_orders_by_status", json.dumps(result))])
    assert answer == (
        "This quarter (01.10.2026 to 31.12.2026) you placed 3 purchase orders worth "
        "**1.234,50\xa0€**.\n\n"
        "| Status | Orders | Total |\n"
        "| --- | ---: | ---: |\n"
        "| awaiting approval | 2 | 1.000,00\xa0€ |\n"
        "| approved | 1 | 234,50\xa0€ |"
    )


def test_error_and_generic_answers() -> None:
    error = ToolResult("approve_purchase_order", json.dumps({"error": "PO-1009 is not pending"}))
    orders = ToolResult(
        "list_purchase_orders",
        json.dumps({"orders": [{"po_number": "PO-1001", "status": "draft"}], "count": 1}),
    )
    answer = answer_tool_results([error, orders, ToolResult(None, "plain words")])
    assert answer.split("\n\n") == [
        "Sorry, approve purchase order didn't go through: PO-1009 is not pending.",
        "Purchase orders: 1 item: PO-1001 (status draft); count: 1.",
        "Here is the result: plain words",
    ]


def test_answers_stay_short() -> None:
    # A list of flat objects is a table of its first rows, the rest counted.
    many = [{"name": f"Item {i}", "on_hand": i, "note": "x" * 20} for i in range(500)]
    answer = answer_tool_results([ToolResult("stock_levels", json.dumps(many))])
    lead, table, more = answer.split("\n\n")
    assert lead == "Stock levels: 500 results."
    assert table.splitlines()[:3] == [
        "| Name | On hand | Note |",
        "| --- | --- | --- |",
        f"| Item 0 | 0 | {'x' * 20} |",
    ]
    assert len(table.splitlines()) == 12
    assert more == "…and 490 more; the table above has them all."
    # Anything else is described in a paragraph of bounded length.
    nested = {"items": [{"name": f"Item {i}", "note": {"long": "x" * 200}} for i in range(500)]}
    answer = answer_tool_results([ToolResult("something", json.dumps(nested))])
    assert answer.startswith("Something: 500 items: Item 0")
    assert len(answer) <= 900


# -- faults --------------------------------------------------------------------------------------


def test_fault_rules_parse_and_refuse_bad_input() -> None:
    rules = parse_fault_rules(
        [
            {"fault": "rate_limit", "retry_after": 2, "api_keys": ["k1"], "times": 1},
            {"fault": "drop_stream", "after_chunks": 4},
            {"fault": "no_usage"},
        ]
    )
    assert [rule.to_json() for rule in rules] == [
        {"fault": "rate_limit", "retry_after": 2.0, "api_keys": ["k1"], "times": 1},
        {"fault": "drop_stream", "after_chunks": 4},
        {"fault": "no_usage"},
    ]
    bad_inputs = [
        ({"fault": "rate_limit"}, "json list"),
        ([{"fault": "explode"}], "unknown fault 'explode'"),
        ([{"fault": "no_usage", "delay_s": 1}], "unknown field 'delay_s'"),
        ([{"fault": "slow_first_token", "delay_s": -1}], "'delay_s' must be a number >= 0"),
        ([{"fault": "drop_stream", "after_chunks": 1.5}], "whole number"),
        ([{"fault": "server_error", "times": "2"}], "'times'"),
        ([{"fault": "server_error", "api_keys": "k"}], "'api_keys'"),
        (["server_error"], "must be an object"),
    ]
    for data, message in bad_inputs:
        with pytest.raises(FaultSpecError, match=re.escape(message)):
            parse_fault_rules(data)


def test_fault_plan_keys_times_and_precedence() -> None:
    rules = parse_fault_rules(
        [
            {"fault": "rate_limit", "api_keys": ["limited"], "times": 2},
            {"fault": "server_error", "api_keys": ["broken"]},
            {"fault": "token_rate", "rate": 5},
            {"fault": "no_usage", "times": 1},
        ]
    )
    assert plan_faults(rules, "other").fired == (FaultKind.TOKEN_RATE, FaultKind.NO_USAGE)
    plan = plan_faults(rules, "other")
    assert (plan.token_rate, plan.omit_usage) == (5.0, False)  # no_usage has fired its once
    for _ in range(2):
        rejected = plan_faults(rules, "limited").reject
        assert rejected is not None
        assert rejected.kind is FaultKind.RATE_LIMIT
    assert plan_faults(rules, "limited").reject is None  # its two times are used up
    broken = plan_faults(rules, "broken").reject
    assert broken is not None
    assert broken.kind is FaultKind.SERVER_ERROR


def test_markers_are_taken_out_of_the_message() -> None:
    text, rules = take_markers("[fault:slow_first_token=0.5] hello [fault:no_usage]")
    assert text == "hello"
    assert [(rule.kind, rule.value) for rule in rules] == [
        (FaultKind.SLOW_FIRST_TOKEN, 0.5),
        (FaultKind.NO_USAGE, 0.0),
    ]
    assert take_markers("[fault:typo] hi") == ("[fault:typo] hi", [])


# -- tokens --------------------------------------------------------------------------------------


def test_text_splits_into_pieces_that_join_back() -> None:
    text = "  Hello there,\n\nfriend!  "
    assert wire.split_text(text) == ["  Hello", " there,", "\n\nfriend!", "  "]
    arguments = '{"po_number": "PO-1001"}'
    pieces = wire.split_arguments(arguments)
    assert len(pieces) > 2
    assert "".join(pieces) == arguments
    assert wire.split_arguments("{}") == ["{", "}"]


def test_counts_fall_back_to_an_estimate_when_no_encoding_loads(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import tiktoken

    def unavailable(name: str) -> Any:
        raise ConnectionError("offline")

    monkeypatch.setattr(tiktoken, "get_encoding", unavailable)
    monkeypatch.setattr(tokens, "_loaded", False)
    monkeypatch.setattr(tokens, "_encoding", None)
    with caplog.at_level(logging.WARNING, logger=tokens.__name__):
        assert tokens.count_text("12345678") == 2
        assert tokens.count_text("123456789") == 3
    assert len([r for r in caplog.records if "estimates" in r.getMessage()]) == 1


# -- knowledge -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("prompt", "tool", "arguments"), ERP_PROMPTS)
def test_erp_prompts_still_call_their_tools_when_knowledge_is_searchable(
    prompt: str, tool: str, arguments: dict[str, Any]
) -> None:
    reply = ask(default_script(), prompt, {tool, "search_knowledge"})
    assert [(call.name, json.loads(call.arguments)) for call in reply.calls] == [(tool, arguments)]


def test_questions_about_rules_and_unmatched_messages_search_the_knowledge() -> None:
    script = default_script()
    offered = {"search_knowledge", "list_purchase_orders"}
    for text in ("what is our approval limit for purchase orders?", "tell me about onboarding"):
        (call,) = ask(script, text, offered).calls
        assert (call.name, json.loads(call.arguments)) == ("search_knowledge", {"query": text})
    # Without the tool, the limit question is a purchase order question again, and an
    # unmatched message gets the fallback, not a sentence about a missing search tool.
    (listing,) = ask(
        script, "what is our approval limit for purchase orders?", offered - {"search_knowledge"}
    ).calls
    assert listing.name == "list_purchase_orders"
    assert ask(script, "tell me about onboarding").text == script.fallback


def test_a_search_result_is_answered_with_its_markers() -> None:
    result = {
        "passages": [
            {"marker": "[1]", "n": 1, "text": "Buyers approve up to 5,000 EUR."},
            {"marker": "[2]", "n": 2, "text": "Above that, finance signs. " * 30},
        ]
    }
    answer = answer_tool_results([ToolResult("search_knowledge", json.dumps(result))])
    assert answer.startswith("From the documents: Buyers approve up to 5,000 EUR. [1]")
    assert answer.endswith("[2]")
    nothing = answer_tool_results([ToolResult("search_knowledge", '{"passages": []}')])
    assert nothing == "I found nothing about that in the documents I can search."


# -- notes about approvals -----------------------------------------------------------------------


def test_notes_after_the_model_last_spoke_are_read_and_answered_first() -> None:
    note = (
        "Update on the action erp__approve_purchase_order (card cf-1), requested earlier in "
        'this conversation, with parameters {"po_number":"PO-1001"}: executed. Result: '
        '{"number":"PO-1001","status":"approved"}. Tell the user the outcome in one sentence.'
    )
    messages = [
        {"role": "system", "content": "You are the assistant."},
        {"role": "user", "content": "approve PO-1001"},
        {"role": "assistant", "content": "Please confirm."},
        {"role": "system", "content": note},
    ]
    conversation = conversation_from_messages(messages, [])
    assert conversation.notes == (note,)
    # The last user message would ask for the action again; the note wins.
    assert default_script().reply(conversation).text == "Done: PO-1001 is now approved."


@pytest.mark.parametrize(
    ("status", "result", "expected"),
    [
        ("rejected", '{"error":"rejected"}', "Cancelled: approve purchase order PO-1003 was"),
        ("expired", '{"error":"late"}', "The approval to approve purchase order PO-1003 expired"),
        ("failed", '{"error":"no stock."}', "Sorry, approve purchase order PO-1003 didn't go"),
    ],
)
def test_every_outcome_is_reported_in_a_sentence(status: str, result: str, expected: str) -> None:
    note = (
        "Update on the action approve_purchase_order (card cf-2), requested earlier in this "
        f'conversation, with parameters {{"po_number":"PO-1003"}}: {status}. Result: {result}. '
        "Tell the user the outcome in one sentence."
    )
    conversation = Conversation(
        user_text="approve PO-1003", tool_results=(), offered_tools=frozenset(), notes=(note,)
    )
    assert default_script().reply(conversation).text.startswith(expected)


def test_a_yes_that_could_decide_several_cards_is_answered_with_a_question() -> None:
    note = (
        "The user's reply “yes” would decide an approval, but 2 are pending: “Approve PO-1001” "
        "(action a, card x, parameters {}); “Approve PO-1004” (action a, card y, parameters {})"
        ". Nothing was decided. Ask the user which one they mean, naming them; they can decide "
        "it on its card."
    )
    conversation = Conversation(
        user_text="yes", tool_results=(), offered_tools=frozenset(), notes=(note,)
    )
    text = default_script().reply(conversation).text
    assert "which one do you mean" in text
    assert "“Approve PO-1001” or “Approve PO-1004”" in text
