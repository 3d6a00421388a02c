"""Local demo: the real function processes sample cancel requests end to end, on loopback.

Run with `make demo` (or `python -m cancel_handler.demo`). No Azure account is needed: a managed-
identity endpoint, Microsoft Graph and the Functions host's settlement service are simulated by
the real protocols on 127.0.0.1, and `function_app` is imported and invoked as the worker would.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import os
import sys
from dataclasses import dataclass

from cancel_handler.devtools.functions_host import settlement_host
from cancel_handler.devtools.graph_simulator import Fault, GraphSimulator
from cancel_handler.devtools.host_message import host_delivered_message
from cancel_handler.devtools.identity_endpoint import IdentityEndpoint, TokenAuthority
from cancel_handler.devtools.reply_queue import LocalReplyQueue
from cancel_handler.servicebus.replies import Replies

ORGANIZER = "adele.vance@contoso.com"
ATTENDEE = "megan.bowen@contoso.com"
OUTSIDER = "ceo@contoso.com"
CANCEL_QUEUE = "meeting-cancellations"
REPLY_QUEUE = "cancel-replies"
REPLY_SESSION = "demo-run"


@dataclass(frozen=True)
class Scenario:
    """One sample message and what the simulated Graph knows about it."""

    title: str
    body: dict | bytes
    event_id: str = ""
    delivery_count: int = 1


SCENARIOS = [
    Scenario(
        "organizer cancels, with a comment",
        {"userPrincipalName": ORGANIZER, "eventId": "AAMkEvt-001=", "comment": "Room closed."},
        "AAMkEvt-001=",
    ),
    Scenario(
        "attendee's copy: only the organizer may cancel",
        {"userPrincipalName": ATTENDEE, "eventId": "AAMkEvt-002="},
        "AAMkEvt-002=",
    ),
    Scenario("malformed body", b'{"userPrincipalName": "adele.vance@contoso.com", eventId: }'),
    Scenario(
        "unknown event id",
        {"userPrincipalName": ORGANIZER, "eventId": "AAMkNoSuchEvt="},
        "AAMkNoSuchEvt=",
    ),
    Scenario(
        "throttled (429, Retry-After: 1), then accepted",
        {"userPrincipalName": ORGANIZER, "eventId": "AAMkEvt-005="},
        "AAMkEvt-005=",
    ),
    Scenario(
        "redelivered after an earlier attempt cancelled it",
        {"userPrincipalName": ORGANIZER, "eventId": "AAMkEvt-006="},
        "AAMkEvt-006=",
        delivery_count=2,
    ),
    Scenario(
        "mailbox outside the app's access scope",
        {"userPrincipalName": OUTSIDER, "eventId": "AAMkEvt-007="},
        "AAMkEvt-007=",
    ),
]


def _seed(graph: GraphSimulator) -> None:
    state = graph.state
    state.add_event(ORGANIZER, "AAMkEvt-001=")
    state.add_event(ATTENDEE, "AAMkEvt-002=", organizer=False)
    state.add_event(ORGANIZER, "AAMkEvt-005=")
    state.script(ORGANIZER, "AAMkEvt-005=", Fault(429, {"Retry-After": "1"}))
    state.add_event(ORGANIZER, "AAMkEvt-006=")
    state.cancelled.add((ORGANIZER, "AAMkEvt-006="))
    state.forbidden_mailboxes.add(OUTSIDER)


async def _invoke_all(function_app, service, actions) -> list[tuple]:
    """Invoke the function once per scenario, each message asking for a reply."""
    [function] = function_app.app.get_functions()
    user_function = function.get_user_function()
    rows = []
    for scenario in SCENARIOS:
        message = host_delivered_message(
            scenario.body,
            delivery_count=scenario.delivery_count,
            message_id=f"demo-{len(rows) + 1}",
            reply_to=REPLY_QUEUE,
            reply_to_session_id=REPLY_SESSION,
        )
        try:
            await user_function(message, actions)
        except Exception as exc:  # shown in the table; the host would redeliver
            rows.append((scenario, message, f"invocation failed: {type(exc).__name__}"))
            continue
        rows.append((scenario, message, None))
    await function_app.processor.aclose()
    return rows


class _SettlementLog(logging.Handler):
    """Keeps the structured settlement line of each message, by message id."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.by_message: dict[str, dict] = {}

    def emit(self, record: logging.LogRecord) -> None:
        fields = getattr(record, "cancel_handler", None)
        if fields:
            self.by_message[fields["message_id"]] = fields


def main(argv: list[str] | None = None) -> int:
    """Run every scenario through `function_app` and print what happened to each message."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--verbose", action="store_true", help="show the function's log lines")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="  log %(levelname)s %(name)s: %(message)s")
    logging.getLogger().handlers[0].setLevel(logging.INFO if args.verbose else logging.ERROR)
    logging.getLogger("azure").setLevel(logging.ERROR)
    settlement_log = _SettlementLog()
    logging.getLogger("cancel_handler.settlement").addHandler(settlement_log)

    authority = TokenAuthority()
    with IdentityEndpoint(authority) as identity, GraphSimulator(authority) as graph:
        _seed(graph)
        os.environ.update(identity.environment)
        os.environ.update(
            {
                "GRAPH_BASE_URL": graph.graph_base_url,
                "CANCEL_QUEUE_NAME": CANCEL_QUEUE,
                "CANCEL_RETRY_BUDGET_SECONDS": "10",
                "REPLY_TO_ALLOWED": REPLY_QUEUE,
                "MAX_DELIVERY_COUNT": "10",
                # Never contacted: replies go to the local reply queue set below.
                "ServiceBusConnection__fullyQualifiedNamespace": "demo.servicebus.windows.net",
            }
        )
        sys.path.insert(0, os.getcwd())
        function_app = importlib.import_module("function_app")
        reply_queue = LocalReplyQueue(REPLY_QUEUE)
        function_app.processor.replies = Replies(
            (REPLY_QUEUE,), CANCEL_QUEUE, reply_queue.sender_for
        )
        with settlement_host() as (service, actions):
            rows = asyncio.run(_invoke_all(function_app, service, actions))
        _print_table(rows, service, graph, settlement_log.by_message)
        _print_replies(rows, reply_queue.session(REPLY_SESSION))
        print(
            f"\nidentity endpoint: {identity.requests} token request(s) for {len(rows)} messages; "
            f"Graph simulator: {len(graph.state.calls)} call(s) on "
            f"{len({c.connection for c in graph.state.calls})} connection(s)."
        )
    return 0


def _print_table(rows: list[tuple], service, graph: GraphSimulator, logged: dict) -> None:
    header = ("#", "scenario", "Graph answered", "settlement", "reason", "attempts")
    table = [header]
    descriptions = []
    for number, (scenario, message, failure) in enumerate(rows, start=1):
        statuses = [str(c.status) for c in graph.state.calls if c.event_id == scenario.event_id]
        graph_text = " → ".join(statuses) if statuses and scenario.event_id else "(not called)"
        settled = service.settled(message)
        action, _, description = settled if settled else ("none", None, failure)
        fields = logged.get(message.message_id, {})
        table.append(
            (
                str(number),
                scenario.title,
                graph_text,
                action,
                fields.get("reason", "-"),
                str(fields.get("attempts", "-")),
            )
        )
        if description:
            descriptions.append(f"  #{number}: {description}")
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for index, row in enumerate(table):
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
        if index == 0:
            print("  ".join("-" * width for width in widths))
    print("\nDead-letter descriptions (what an operator sees in the dead-letter queue):")
    print("\n".join(descriptions))


def _print_replies(rows: list[tuple], events: list[dict]) -> None:
    """What each sender got back on the reply queue (session `demo-run`)."""
    by_request = {event["data"]["requestMessageId"]: event for event in events}
    print(f"\nReplies on {REPLY_QUEUE} (session {REPLY_SESSION}), what each sender sees:")
    for number, (_, message, _) in enumerate(rows, start=1):
        event = by_request.get(message.message_id)
        if event is None:
            print(f"  #{number}: (no reply: still in progress)")
            continue
        data = event["data"]
        details = [f"reason={data['reason']}"]
        if "graphStatus" in data:
            details.append(f"graphStatus={data['graphStatus']}")
        details.append(f"attempts={data['attempts']}")
        print(f"  #{number}: {data['outcome']:<16} {' '.join(details)}  reply id {event['id']}")


if __name__ == "__main__":
    raise SystemExit(main())
