"""Everything that talks to Microsoft Graph: the HTTP client, the managed-identity token and the
per-mailbox concurrency limit. Depends on `cancel_handler.core` only."""
