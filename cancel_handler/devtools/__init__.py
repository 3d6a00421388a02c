"""Loopback stand-ins for the services the function talks to, for the demo, tests and benchmarks:
messages in the Functions host's byte layout (decoded by the binding extension itself), the
host's settlement service, an App Service managed-identity endpoint and a Microsoft Graph
simulator. Never for production."""
