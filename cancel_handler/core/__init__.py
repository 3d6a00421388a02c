"""Pure decisions and value types: the message contract, Graph's answers → settlements, backoff,
redaction. Imports nothing outside `cancel_handler.core` and does no I/O."""
