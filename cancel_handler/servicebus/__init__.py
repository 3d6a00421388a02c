"""Everything that talks to Service Bus: facts read off received messages, settlement through
`ServiceBusMessageActions` and scheduled retry copies. Depends on `cancel_handler.core` only."""
