"""Traces and metrics of the function, through OpenTelemetry (issue 18; docs/operate.md).

Off unless an OpenTelemetry SDK provider is installed: in Azure the Python worker installs the
Azure Monitor distro's when `PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY` is true, locally
`cancel_handler.telemetry.local` installs a console or OTLP exporter (`make demo`). Off, the
function runs the plain pipeline and imports nothing from OpenTelemetry.

- `names`: every span name, attribute and metric, named once;
- `instruments`: the tracer and metric instruments, and whether telemetry is on;
- `pipeline`: the pipeline's stages wrapped in spans; `graph`: Graph calls as client spans;
- `propagation`: W3C trace context in and out of Service Bus application properties;
- `mailbox`: the mailbox's keyed hash and a Graph URL's route template.
"""
