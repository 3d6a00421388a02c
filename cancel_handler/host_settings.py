"""What the Functions host is configured to do that the function's own settings must fit in:
how long the host keeps renewing a message's lock (`maxAutoLockRenewalDuration`).

The host reads it from host.json (`extensions.serviceBus.maxAutoLockRenewalDuration`, default
5 minutes) unless the app setting `AzureFunctionsJobHost__extensions__serviceBus__
maxAutoLockRenewalDuration` overrides it (Learn: "host.json reference for Azure Functions 2.x
and later", section "Override host.json values"; "Azure Service Bus bindings for Azure
Functions", host.json settings).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path

from cancel_handler.core.errors import SettingsError

#: host.json beside the `cancel_handler` package: the Function App's root.
HOST_JSON = Path(__file__).resolve().parents[1] / "host.json"
LOCK_RENEWAL_OVERRIDE = "AzureFunctionsJobHost__extensions__serviceBus__maxAutoLockRenewalDuration"
#: The Service Bus extension's default when host.json sets none.
DEFAULT_LOCK_RENEWAL_SECONDS = 300.0
#: A .NET TimeSpan as host.json writes it: `[d.]hh:mm:ss[.fffffff]`.
_TIMESPAN = re.compile(r"(?:(\d+)\.)?(\d{1,2}):([0-5]\d):([0-5]\d)(?:\.(\d{1,7}))?")


def lock_renewal_seconds(environ: Mapping[str, str], host_json: Path = HOST_JSON) -> float:
    """The host's `maxAutoLockRenewalDuration` in seconds: the app setting override, else
    host.json's value, else the extension's default; SettingsError when unreadable."""
    override = environ.get(LOCK_RENEWAL_OVERRIDE, "").strip()
    if override:
        return _timespan_seconds(LOCK_RENEWAL_OVERRIDE, override)
    try:
        document = json.loads(host_json.read_bytes())  # JSON text is UTF-8 (RFC 8259)
    except FileNotFoundError:
        return DEFAULT_LOCK_RENEWAL_SECONDS
    except (OSError, ValueError) as exc:
        raise SettingsError("host.json", f"cannot be read ({type(exc).__name__})") from None
    section = document.get("extensions", {}) if isinstance(document, dict) else {}
    service_bus = section.get("serviceBus", {}) if isinstance(section, dict) else {}
    value = service_bus.get("maxAutoLockRenewalDuration") if isinstance(service_bus, dict) else None
    if value is None:
        return DEFAULT_LOCK_RENEWAL_SECONDS
    name = "host.json extensions.serviceBus.maxAutoLockRenewalDuration"
    return _timespan_seconds(name, value)


def _timespan_seconds(name: str, text: object) -> float:
    match = _TIMESPAN.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise SettingsError(name, f"must be a time span like 00:05:00, got {text!r}")
    days, hours, minutes, seconds, fraction = match.groups()
    whole = ((int(days or 0) * 24 + int(hours)) * 60 + int(minutes)) * 60 + int(seconds)
    return whole + float(f"0.{fraction or 0}")
