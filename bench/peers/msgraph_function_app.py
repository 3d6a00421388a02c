"""The peer: a minimal hand-written function doing the same job with the Microsoft Graph SDK.

Only the benchmarks import it (with .venv-bench, which has msgraph-sdk); the product never does.
It is what the Graph SDK samples show: a module-level credential and GraphServiceClient, the same
Service Bus trigger and settlement extension, and the SDK's cancel call.
"""

import azure.functions as func
import azurefunctions.extensions.bindings.servicebus as servicebus
from azure.identity.aio import ManagedIdentityCredential
from msgraph import GraphServiceClient
from msgraph.generated.users.item.events.item.cancel.cancel_post_request_body import (
    CancelPostRequestBody,
)

app = func.FunctionApp()
credential = ManagedIdentityCredential()
graph = GraphServiceClient(credentials=credential, scopes=["https://graph.microsoft.com/.default"])


@app.service_bus_queue_trigger(
    arg_name="message",
    queue_name="%CANCEL_QUEUE_NAME%",
    connection="ServiceBusConnection",
    auto_complete_messages=False,
)
async def cancel_meeting(
    message: servicebus.ServiceBusReceivedMessage,
    message_actions: servicebus.ServiceBusMessageActions,
) -> None:
    """Cancel the meeting, then complete the message (dead-letter when Graph refuses)."""
    import json

    request = json.loads(b"".join(message.body))
    body = CancelPostRequestBody(comment=request.get("comment"))
    try:
        await (
            graph.users.by_user_id(request["userPrincipalName"])
            .events.by_event_id(request["eventId"])
            .cancel.post(body)
        )
    except Exception as exc:
        message_actions.deadletter(message, deadletter_reason=type(exc).__name__)
        return
    message_actions.complete(message)
