"""Operations on the cancel queue for integrators and operators: send requests, read and repair
the dead-letter queue. No command-line code here: `cancel_handler.cli` is a thin layer on top."""
