"""Loopback stand-ins for the services the function talks to, for the demo, tests and benchmarks:
messages in the Functions host's byte layout (decoded by the binding extension itself), the
host's settlement service, an App Service managed-identity endpoint and a Microsoft Graph
simulator. Never for production."""

import os

# The loopback settlement host stops while the binding extension's client still holds its
# channel (the extension offers no way to close it), and gRPC core then logs the GOAWAY at info
# level on stderr, in the middle of the demo's output. Errors are still printed.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
