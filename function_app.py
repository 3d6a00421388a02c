"""Azure Functions entry point (Python v2 model): wiring only.

A Service Bus queue trigger hands each cancel request to cancel_handler, which settles it
explicitly through ServiceBusMessageActions (auto-complete is off). With CHILD_QUEUE_NAME set, a
second trigger, session-enabled, takes a date range's child requests from that queue through the
same pipeline: Service Bus gives each session to one instance at a time, one call per session.
"""

import azure.functions as func
import azurefunctions.extensions.bindings.servicebus as servicebus

from cancel_handler.runtime import Processor

app = func.FunctionApp()

# Validates the app settings now, so a bad value stops the app at start-up with its name.
processor = Processor.from_environment()


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
    """Cancel the meeting a message asks for, then complete, dead-letter or abandon it."""
    await processor.process(message, message_actions)


if processor.settings.child_queue_name:

    @app.service_bus_queue_trigger(
        arg_name="message",
        queue_name="%CHILD_QUEUE_NAME%",
        connection="ServiceBusConnection",
        is_sessions_enabled=True,
        auto_complete_messages=False,
    )
    async def cancel_child_meeting(
        message: servicebus.ServiceBusReceivedMessage,
        message_actions: servicebus.ServiceBusMessageActions,
    ) -> None:
        """Cancel one meeting of a date range (a child request, in its organizer's session),
        then complete, dead-letter or abandon it."""
        await processor.process_child(message, message_actions)
