"""Loopback stand-ins for the services the function talks to, for the demo, tests and benchmarks:
an App Service managed-identity endpoint and a Microsoft Graph simulator. Never for production."""
