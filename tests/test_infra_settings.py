"""The deployment (infra/, azure.yaml) agrees with the code: app settings, defaults, wiring.

No Bicep compiler runs here, so these are lightweight text checks of the templates. The checker
functions are exercised on deliberately broken copies too, so a passing run means something.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from cancel_handler import settings

ROOT = Path(__file__).resolve().parents[1]
INFRA = ROOT / "infra"
FUNCTION_BICEP = INFRA / "app" / "function.bicep"
MAIN_BICEP = INFRA / "main.bicep"
PARAMETERS_JSON = INFRA / "main.parameters.json"

EXPECTED_SETTINGS = settings.CODE_SETTINGS + settings.HOST_SETTINGS + settings.TELEMETRY_SETTINGS

#: App settings the platform reads, not our code: Application Insights telemetry from the
#: Functions host (connection string, plus Entra authentication because local auth is off).
PLATFORM_SETTINGS = (
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
)

#: Must never be set on Flex Consumption (the platform derives them from functionAppConfig), and
#: the key-based storage connection string must not come back.
FORBIDDEN_SETTINGS = (
    "FUNCTIONS_WORKER_RUNTIME",
    "FUNCTIONS_EXTENSION_VERSION",
    "WEBSITE_RUN_FROM_PACKAGE",
    "AzureWebJobsStorage",
)


# --- lightweight Bicep reading ---------------------------------------------------------------


def strip_line_comments(text: str) -> str:
    """Drop whole-line `//` comments (enough for our templates; strings may contain `//`)."""
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("//"))


def app_settings_block(text: str) -> str:
    """Return the body of the `appSettings: [ ... ]` array in a Bicep module."""
    text = strip_line_comments(text)
    start = text.find("appSettings: [")
    if start < 0:
        raise ValueError("no `appSettings: [` array found")
    depth = 0
    for index in range(start + len("appSettings: "), len(text)):
        if text[index] == "[":
            depth += 1
        elif text[index] == "]":
            depth -= 1
            if depth == 0:
                return text[start:index]
    raise ValueError("unterminated appSettings array")


def bicep_app_settings(text: str) -> dict[str, str]:
    """Map each app setting name to its (raw Bicep) value expression."""
    block = app_settings_block(text)
    pairs = re.findall(r"name:\s*'([^']+)'\s*\n\s*value:\s*(.+)", block)
    names = re.findall(r"name:\s*'([^']+)'", block)
    if len(pairs) != len(names):
        raise ValueError("every app setting needs `name:` directly followed by `value:`")
    result: dict[str, str] = {}
    for name, value in pairs:
        if name in result:
            raise ValueError(f"app setting {name} is set twice")
        result[name] = value.strip()
    return result


def settings_drift(bicep_names, expected=EXPECTED_SETTINGS, platform=PLATFORM_SETTINGS):
    """Return (missing from Bicep, set by Bicep but unknown to the code and the allow-list)."""
    missing = sorted(set(expected) - set(bicep_names))
    unexpected = sorted(set(bicep_names) - set(expected) - set(platform))
    return missing, unexpected


def bicep_params(text: str) -> dict[str, str | None]:
    """Map each `param` of a Bicep file to its default expression (None when required)."""
    params = {}
    for match in re.finditer(r"^param\s+(\w+)\s+\w+(?:\s*=\s*(.+))?$", text, re.MULTILINE):
        params[match.group(1)] = match.group(2).strip() if match.group(2) else None
    return params


def azd_parameters() -> dict[str, str]:
    values = json.loads(PARAMETERS_JSON.read_text())["parameters"]
    return {name: entry["value"] for name, entry in values.items()}


# --- app settings ----------------------------------------------------------------------------


def test_bicep_sets_exactly_the_documented_settings():
    """The Function App gets every setting the code and host read, and nothing unexplained."""
    missing, unexpected = settings_drift(bicep_app_settings(FUNCTION_BICEP.read_text()))
    assert missing == [], f"settings.py names missing from {FUNCTION_BICEP.name}"
    assert unexpected == [], "app settings neither in settings.py nor in PLATFORM_SETTINGS"


@pytest.mark.parametrize("name", EXPECTED_SETTINGS)
def test_checker_reports_a_removed_setting(name):
    """Deleting one setting (name and value) from a copy of the template gets it reported."""
    text = FUNCTION_BICEP.read_text()
    broken = re.sub(rf"^\s*name:\s*'{re.escape(name)}'\n.*\n", "", text, count=1, flags=re.M)
    assert broken != text
    missing, _ = settings_drift(bicep_app_settings(broken))
    assert missing == [name]


@pytest.mark.parametrize("extra", [*FORBIDDEN_SETTINGS, "GRAPH_TIMEOUT"])
def test_checker_reports_an_unknown_setting(extra):
    """Adding a setting the code does not read (or a typo of one) makes the checker name it."""
    text = FUNCTION_BICEP.read_text().replace(
        "appSettings: [", f"appSettings: [\n        {{\n          name: '{extra}'\n"
        "          value: 'x'\n        }", 1)
    _, unexpected = settings_drift(bicep_app_settings(text))
    assert unexpected == [extra]


def test_flex_consumption_forbidden_settings_absent():
    """FUNCTIONS_WORKER_RUNTIME & co. are not set anywhere in infra/ (Flex rejects them)."""
    for path in INFRA.rglob("*.bicep"):
        code = strip_line_comments(path.read_text())
        for name in FORBIDDEN_SETTINGS:
            assert not re.search(rf"['\s]{name}['\s:]", code), f"{name} set in {path.name}"


def test_identity_based_connections():
    """Host connections use the managed identity; the worker isolates its dependencies."""
    values = bicep_app_settings(FUNCTION_BICEP.read_text())
    assert values["ServiceBusConnection__credential"] == "'managedidentity'"
    assert values["AzureWebJobsStorage__credential"] == "'managedidentity'"
    assert values["PYTHON_ISOLATE_WORKER_DEPENDENCIES"] == "'1'"
    client_id = values["AZURE_CLIENT_ID"]
    assert values["ServiceBusConnection__clientId"] == client_id
    assert values["AzureWebJobsStorage__clientId"] == client_id
    assert "Authorization=AAD" in values["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"]


# --- defaults --------------------------------------------------------------------------------

#: main.bicep parameter -> (setting name, default in settings.py)
TUNABLES = {
    "graphBaseUrl": ("GRAPH_BASE_URL", settings.DEFAULT_GRAPH_BASE_URL),
    "graphTimeoutSeconds": ("GRAPH_TIMEOUT_SECONDS", settings.DEFAULT_GRAPH_TIMEOUT_SECONDS),
    "retryBudgetSeconds": ("CANCEL_RETRY_BUDGET_SECONDS", settings.DEFAULT_RETRY_BUDGET_SECONDS),
    "mailboxConcurrency": ("GRAPH_MAILBOX_CONCURRENCY", settings.DEFAULT_MAILBOX_CONCURRENCY),
    "delayedRetryMaxCount": (
        "DELAYED_RETRY_MAX_COUNT", settings.DEFAULT_DELAYED_RETRY_MAX_COUNT),
    "rangeMaxDays": ("RANGE_MAX_DAYS", 366),
    "rangeMaxEvents": ("RANGE_MAX_EVENTS", 500),
}


def _same(bicep_literal: str, default) -> bool:
    literal = bicep_literal.strip().strip("'")
    if isinstance(default, str):
        return literal == default
    return float(literal) == float(default)


@pytest.mark.parametrize("param", TUNABLES)
def test_bicep_defaults_match_settings_defaults(param):
    """main.bicep and main.parameters.json default each tunable to the value settings.py uses."""
    setting, default = TUNABLES[param]
    assert _same(bicep_params(MAIN_BICEP.read_text())[param], default)
    placeholder = azd_parameters()[param]
    match = re.fullmatch(r"\$\{(\w+)=(.*)\}", placeholder)
    assert match, f"{param} should read an azd variable with a default"
    assert match.group(1) == setting, "the azd variable carries the app setting's name"
    assert _same(match.group(2), default)


def bicep_bounds(text: str, param: str) -> tuple[int, int]:
    """The @minValue/@maxValue decorators right above `param` in a Bicep file."""
    match = re.search(
        rf"@minValue\((-?\d+)\)\s*\n@maxValue\((-?\d+)\)\s*\nparam {param} int", text
    )
    assert match, f"{param} has no @minValue/@maxValue"
    return int(match.group(1)), int(match.group(2))


@pytest.mark.parametrize(
    "param",
    # GRAPH_TIMEOUT_SECONDS is any positive number to the app; Bicep bounds only the deployment.
    ["mailboxConcurrency", "delayedRetryMaxCount", "rangeMaxDays", "rangeMaxEvents"],
)
def test_bicep_bounds_are_what_the_app_accepts(param):
    """A value azd accepts for a tunable also starts the app, and the app refuses one step past
    either bound: Bicep's @minValue/@maxValue and settings.py agree."""
    setting = TUNABLES[param][0]
    low, high = bicep_bounds(MAIN_BICEP.read_text(), param)
    for accepted in (low, high):
        settings.load_settings({setting: str(accepted)})
    for refused in (low - 1, high + 1):
        with pytest.raises(settings.SettingsError, match=setting):
            settings.load_settings({setting: str(refused)})


def test_queue_name_default():
    """The queue is called meeting-cancellations unless configured otherwise."""
    assert bicep_params(MAIN_BICEP.read_text())["queueName"] == "'meeting-cancellations'"
    assert azd_parameters()["queueName"] == "${CANCEL_QUEUE_NAME=meeting-cancellations}"


# --- azd wiring ------------------------------------------------------------------------------


def test_parameters_file_matches_main_bicep():
    """Every parameter azd passes exists, and every required parameter is passed."""
    params = bicep_params(MAIN_BICEP.read_text())
    passed = azd_parameters()
    assert sorted(set(passed) - set(params)) == []
    required = {name for name, default in params.items() if default is None}
    assert sorted(required - set(passed)) == []


def azure_yaml_services(text: str) -> dict[str, dict[str, str]]:
    """Read the `services:` map of azure.yaml (two-level, `key: value` lines only)."""
    services: dict[str, dict[str, str]] = {}
    current = None
    in_services = False
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].rstrip()
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        if indent == 0:
            in_services = line == "services:"
            continue
        if not in_services:
            continue
        key, _, value = line.strip().partition(":")
        if indent == 2:
            current = services.setdefault(key, {})
        elif current is not None:
            current[key] = value.strip()
    return services


def test_azure_yaml_names_the_python_function_service():
    """azure.yaml has one Python Function service whose project folder exists."""
    services = azure_yaml_services((ROOT / "azure.yaml").read_text())
    assert len(services) == 1
    (name, service), = services.items()
    assert service["host"] == "function"
    assert service["language"] == "python"
    project = ROOT / service["project"]
    assert project.is_dir()
    assert (project / "host.json").is_file()
    assert f"var serviceName = '{name}'" in MAIN_BICEP.read_text(), "azd-service-name tag"


def test_every_module_path_exists():
    """Each `module x './path.bicep'` in any template points at a file in the repository."""
    references = 0
    for path in INFRA.rglob("*.bicep"):
        for target in re.findall(r"^module\s+\w+\s+'([^']+)'", path.read_text(), re.MULTILINE):
            references += 1
            assert not target.startswith("br"), f"{path.name}: registry module {target}"
            assert (path.parent / target).is_file(), f"{path.name}: {target} not found"
    assert references > 0


def test_no_compiled_template_committed():
    """The compiled ARM template (main.json) is a build output, not source."""
    assert not (INFRA / "main.json").exists()


# --- mailbox access and roles ----------------------------------------------------------------


def test_scoped_mode_creates_no_entra_grant():
    """Only the tenant-wide module touches Microsoft Graph, and only in tenantWide mode."""
    graph_files = [p.name for p in INFRA.rglob("*.bicep")
                   if "Microsoft.Graph/" in strip_line_comments(p.read_text())]
    assert graph_files == ["graph-app-role.bicep"]
    main = MAIN_BICEP.read_text()
    assert re.search(
        r"module \w+ './app/graph-app-role.bicep' = if \(mailboxAccessMode == 'tenantWide'\)",
        main)
    assert bicep_params(main)["mailboxAccessMode"] == "'scoped'"
    role = (INFRA / "app" / "graph-app-role.bicep").read_text()
    assert "ef54d2bf-783f-4e0f-bca1-3210c0444d99" in role  # Calendars.ReadWrite (application)
    assert "00000003-0000-0000-c000-000000000000" in role  # Microsoft Graph


def test_function_sends_only_with_delayed_retries_or_ranges():
    """Data Sender on the cancel queue for the function depends on delayed retries, or on date
    ranges whose children go to this queue (no children queue); all roles sit on the queue."""
    access = (INFRA / "app" / "queue-access.bicep").read_text()
    assert re.search(
        r"resource functionSender \S+ = if \(delayedRetryMaxCount > 0 \|\| "
        r"\(rangeMaxEvents > 0 && childrenOnCancelQueue\)\)",
        access,
    )
    scopes = re.findall(r"^\s*scope:\s*(\S+)", access, re.MULTILINE)
    assert len(scopes) == 5
    assert set(scopes) == {"serviceBusNamespace::queue"}, "roles belong on the queue only"



# --- parameters azd fills from the environment -----------------------------------------------


def bicep_param_types(text: str) -> dict[str, str]:
    """Map each `param` of a Bicep file to its declared type."""
    return dict(re.findall(r"^param\s+(\w+)\s+(\w+)", text, re.MULTILINE))


def test_azd_fills_only_scalar_parameters():
    """Every parameter azd fills from an environment variable is a string, int or bool.

    azd releases before February 2026 (azure-dev PR #6694) pass an array or object parameter
    through as the variable's text, and Azure rejects the deployment.
    """
    types = bicep_param_types(MAIN_BICEP.read_text())
    from_environment = [name for name, value in azd_parameters().items() if "${" in value]
    assert from_environment
    assert {name: types[name] for name in from_environment
            if types[name] not in ("string", "int", "bool")} == {}


def test_sender_ids_are_split_from_one_string():
    """CANCEL_SENDER_PRINCIPAL_IDS is text (empty by default) that main.bicep splits into the list
    of object ids the queue module grants Data Sender to; JSON-array text is tolerated."""
    assert azd_parameters()["senderPrincipalIds"] == "${CANCEL_SENDER_PRINCIPAL_IDS}"
    main = MAIN_BICEP.read_text()
    assert bicep_param_types(main)["senderPrincipalIds"] == "string"
    assert bicep_params(main)["senderPrincipalIds"] == "''"
    text = re.search(r"^var senderPrincipalIdText = (.+)$", main, re.MULTILINE)
    split = re.search(r"^var senderPrincipalIdList = (.+)$", main, re.MULTILINE)
    assert text and split, "main.bicep needs senderPrincipalIdText and senderPrincipalIdList"
    for removed in ("'['", "']'", "'\"'", "' '"):
        assert f"{removed}, '')" in text.group(1), f"the cleaning misses {removed}"
    assert split.group(1) == (
        "empty(senderPrincipalIdText) ? [] : split(senderPrincipalIdText, ',')")
    assert re.search(r"^\s+senderPrincipalIds: senderPrincipalIdList$", main, re.MULTILINE)
    access = (INFRA / "app" / "queue-access.bicep").read_text()
    assert bicep_param_types(access)["senderPrincipalIds"] == "array"
    assert "[for senderId in senderPrincipalIds: if (!empty(senderId)) {" in access



# --- role assignments ------------------------------------------------------------------------

#: Built-in role ids, from Microsoft's "Azure built-in roles" reference.
SERVICE_BUS_DATA_OWNER = "090c5cfd-751d-490a-894a-3ce6f1109419"
SERVICE_BUS_DATA_RECEIVER = "4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0"
STORAGE_BLOB_DATA_OWNER = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"
STORAGE_TABLE_DATA_CONTRIBUTOR = "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3"
STORAGE_QUEUE_DATA_CONTRIBUTOR = "974c5e8b-45b9-4653-ba55-5f855dd0fb88"


def role_assignments(text: str) -> list[dict[str, str]]:
    """Each roleAssignments resource: its condition, role id (resolved), principal and scope."""
    variables = dict(re.findall(r"^var\s+(\w+)\s*=\s*'([0-9a-f-]{36})'", text, re.MULTILINE))
    found = []
    pattern = re.compile(
        r"^resource (\w+) 'Microsoft\.Authorization/roleAssignments@[^']+' = "
        r"(?:if \(([^\n]*)\) )?(?:\[for [^\n]*?: )?\{\n(.*?)\n\}", re.MULTILINE | re.DOTALL)
    for symbol, condition, body in pattern.findall(text):
        role = re.search(r"roleDefinitionId: .*?, (\w+)\)", body).group(1)
        found.append({
            "symbol": symbol,
            "condition": condition,
            "role": variables.get(role, role),
            "principal": re.search(r"principalId: (\S+)", body).group(1),
            "scope": re.search(r"scope: (\S+)", body).group(1),
        })
    return found


def test_function_may_read_the_queue_length_for_scaling():
    """By default the function identity holds Service Bus Data Owner on the queue (the Manage right
    the scaler needs to read the queue length); switched off, only Data Receiver remains."""
    access = (INFRA / "app" / "queue-access.bicep").read_text()
    grants = {(g["role"], g["principal"]): g for g in role_assignments(access)}
    owner = grants[(SERVICE_BUS_DATA_OWNER, "functionPrincipalId")]
    assert owner["condition"] == "scaleByQueueLength"
    assert owner["scope"] == "serviceBusNamespace::queue"
    receiver = grants[(SERVICE_BUS_DATA_RECEIVER, "functionPrincipalId")]
    assert receiver["condition"] == ""
    main = MAIN_BICEP.read_text()
    assert bicep_params(main)["serviceBusScaleByQueueLength"] == "true"
    assert re.search(r"^\s+scaleByQueueLength: serviceBusScaleByQueueLength$", main, re.M)
    assert azd_parameters()["serviceBusScaleByQueueLength"] == (
        "${SERVICE_BUS_SCALE_BY_QUEUE_LENGTH=true}")


def test_host_storage_roles_are_blob_owner_and_table_contributor():
    """On its storage account the function identity gets exactly Storage Blob Data Owner (host
    locks, keys, deployment package) and Storage Table Data Contributor (diagnostic events)."""
    storage = (INFRA / "core" / "storage.bicep").read_text()
    grants = [g for g in role_assignments(storage) if g["principal"] == "functionPrincipalId"]
    assert sorted(g["role"] for g in grants) == sorted(
        [STORAGE_BLOB_DATA_OWNER, STORAGE_TABLE_DATA_CONTRIBUTOR])
    assert {g["scope"] for g in grants} == {"storage"}
    assert {g["condition"] for g in grants} == {""}
    assert STORAGE_QUEUE_DATA_CONTRIBUTOR not in storage


# --- replies and the last-delivery rule ------------------------------------------------------

REPLY_BICEP = INFRA / "app" / "reply-queue.bicep"
SERVICEBUS_BICEP = INFRA / "app" / "servicebus.bicep"
DATA_SENDER_ROLE = "69a216fc-b8fb-44d8-bc22-1f3c2cd27a39"  # Azure Service Bus Data Sender


def module_params(main: str, module: str) -> dict[str, str]:
    """The `params: { … }` a module block in main.bicep passes, name → expression."""
    match = re.search(rf"^module {module} '[^']+' = \{{\n(.*?)^\}}", main, re.M | re.S)
    assert match, f"module {module} not found"
    block = re.search(r"params: \{\n(.*?)\n  \}", match.group(1), re.S)
    assert block
    return dict(re.findall(r"^\s*(\w+):\s*(.+)$", block.group(1), re.M))


def reply_wiring_problems(module: str) -> list[str]:
    """What breaks 'REPLY_TO_ALLOWED = exactly the entities the function may send to'."""
    code = strip_line_comments(module)
    problems = []
    output = re.search(r"^output replyToAllowed string = (.+)$", code, re.M)
    listed = output.group(1) if output else ""
    for part in ("createReplyQueue ? [replyQueueName] : []", "existingReplyQueueNames",
                 "existingReplyTopicNames"):
        if part not in listed:
            problems.append(f"REPLY_TO_ALLOWED lacks {part}")
    senders = re.findall(
        r"^resource (\w+) 'Microsoft.Authorization/roleAssignments@[^']+' = (.*?)\{\n"
        r"(.*?)^\}?\]?$", code, re.M | re.S)
    function_scopes = set()
    for _, head, body in senders:
        if "dataSenderRoleId" in body and "functionPrincipalId" in body:
            scope = re.search(r"scope:\s*(\S+)", body)
            function_scopes.add((head.strip(), scope.group(1) if scope else None))
    expected = {
        ("if (createReplyQueue)", "replyQueue"),
        ("[for (name, i) in existingReplyQueueNames:", "existingQueues[i]"),
        ("[for (name, i) in existingReplyTopicNames:", "existingTopics[i]"),
    }
    if function_scopes != expected:
        problems.append(f"function Data Sender assignments {sorted(function_scopes)}")
    if f"var dataSenderRoleId = '{DATA_SENDER_ROLE}'" not in code:
        problems.append("dataSenderRoleId is not Azure Service Bus Data Sender")
    return problems


def test_reply_to_allowed_lists_exactly_the_entities_the_function_may_send_to():
    """REPLY_TO_ALLOWED is built from the same three parameters that grant the function Data
    Sender, each assignment scoped to one reply entity; main.bicep wires it into the app."""
    assert reply_wiring_problems(REPLY_BICEP.read_text()) == []
    assert bicep_app_settings(FUNCTION_BICEP.read_text())["REPLY_TO_ALLOWED"] == "replyToAllowed"
    main = MAIN_BICEP.read_text()
    assert module_params(main, "functionApp")["replyToAllowed"] == (
        "replies.outputs.replyToAllowed")
    passed = module_params(main, "replies")
    assert passed["replyQueueName"] == "replyQueueName"
    assert passed["existingReplyQueueNames"] == "existingReplyQueueList"
    assert passed["existingReplyTopicNames"] == "existingReplyTopicList"
    params = bicep_params(main)
    assert params["replyQueueName"] == "''", "no reply queue unless asked for"
    assert params["existingReplyQueueNames"] == params["existingReplyTopicNames"] == "''"
    for variable in ("existingReplyQueueList", "existingReplyTopicList"):
        assert re.search(rf"^var {variable} = .*split\(", main, re.M), f"{variable} is not split"


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (", existingReplyTopicNames)", ")"),
        ("scope: existingQueues[i]", "scope: serviceBusNamespace"),
        (
            "= [for (name, i) in existingReplyQueueNames:",
            "= [for (name, i) in existingReplyTopicNames:",
        ),
    ],
    ids=["topic-missing-from-setting", "namespace-wide-role", "wrong-list"],
)
def test_reply_wiring_checker_catches_drift(old, new):
    """A reply module whose setting and roles drift apart is reported."""
    text = REPLY_BICEP.read_text()
    assert old in text
    assert reply_wiring_problems(text.replace(old, new, 1)) != []


def test_reply_queue_is_session_enabled_with_duplicate_detection():
    """The created reply queue needs sessions (a sender's own replies) and duplicate detection
    (a redelivery's repeated reply is dropped)."""
    code = strip_line_comments(REPLY_BICEP.read_text())
    assert re.search(r"resource replyQueue '[^']+' = if \(createReplyQueue\)", code)
    assert "requiresSession: true" in code
    assert "requiresDuplicateDetection: true" in code


def test_max_delivery_count_is_the_queues_max_delivery_count():
    """MAX_DELIVERY_COUNT and the maxDeliveryCount of the cancel queue and of the children
    queue are one value (the function's last-delivery rule serves both triggers)."""
    bus = strip_line_comments(SERVICEBUS_BICEP.read_text())
    var = re.search(r"^var maxDeliveryCount = (\d+)$", bus, re.M)
    assert var and int(var.group(1)) >= 1
    assert re.findall(r"^\s*maxDeliveryCount: (\S+)$", bus, re.M) == ["maxDeliveryCount"] * 2
    assert "output maxDeliveryCount int = maxDeliveryCount" in bus
    assert module_params(MAIN_BICEP.read_text(), "functionApp")["maxDeliveryCount"] == (
        "serviceBus.outputs.maxDeliveryCount")
    assert bicep_app_settings(FUNCTION_BICEP.read_text())["MAX_DELIVERY_COUNT"] == (
        "string(maxDeliveryCount)")


CHILD_ACCESS_BICEP = INFRA / "app" / "child-queue-access.bicep"


def test_the_children_queue_is_session_enabled_like_the_cancel_queue():
    """The children queue exists only with CHILD_QUEUE_NAME, requires sessions, and keeps the
    cancel queue's duplicate detection (a redelivered parent re-sends the same child ids), lock
    duration and dead-lettering on expiry."""
    code = strip_line_comments(SERVICEBUS_BICEP.read_text())
    block = code[code.index("resource childQueue"):]
    block = block[: block.index("\n}\n")]
    assert re.search(r"resource childQueue '[^']+' = if \(!empty\(childQueueName\)\)", block)
    for line in (
        "requiresSession: true",
        "requiresDuplicateDetection: true",
        "duplicateDetectionHistoryTimeWindow: 'PT10M'",
        "lockDuration: lockDuration",
        "maxDeliveryCount: maxDeliveryCount",
        "deadLetteringOnMessageExpiration: true",
    ):
        assert line in block, line


def test_children_queue_roles_are_the_functions_own_and_on_that_queue_only():
    """On the children queue the function gets Data Receiver (the session trigger) and Data
    Sender (the fan-out), Data Owner only for queue-length scaling, the deployer only when asked;
    no upstream sender gets anything; every role is scoped to that one queue; the module runs
    only with ranges on and a children queue named; the app gets the queue's name."""
    access = strip_line_comments(CHILD_ACCESS_BICEP.read_text())
    scopes = re.findall(r"^\s*scope:\s*(\S+)", access, re.MULTILINE)
    assert set(scopes) == {"serviceBusNamespace::childQueue"} and len(scopes) == 4
    assert "senderPrincipalIds" not in access
    assert re.search(r"resource functionOwner \S+ = if \(scaleByQueueLength\)", access)
    main = strip_line_comments(MAIN_BICEP.read_text())
    assert re.search(
        r"module childQueueAccess './app/child-queue-access.bicep' = "
        r"if \(rangeMaxEvents > 0 && !empty\(childQueueName\)\)",
        main,
    )
    assert module_params(main, "functionApp")["childQueueName"] == (
        "serviceBus.outputs.childQueueName"
    )
    assert module_params(main, "queueAccess")["childrenOnCancelQueue"] == (
        "empty(serviceBus.outputs.childQueueName)"
    )


def test_alerts_watch_the_children_queue_too():
    """Dead letters and backlog on the children queue raise the same alerts as on the cancel
    queue: both alerts filter EntityName on the watched queues, which include it when named."""
    alerts = strip_line_comments((INFRA / "app" / "alerts.bicep").read_text())
    assert re.search(r"var watchedQueues = empty\(childQueueName\) \? \[", alerts)
    assert "  childQueueName\n]" in alerts
    assert alerts.count("values: watchedQueues") == 2
    main = strip_line_comments(MAIN_BICEP.read_text())
    assert module_params(main, "alerts")["childQueueName"] == "serviceBus.outputs.childQueueName"
