"""The Bicep templates fit Azure's published resource types (infra/types/, infra/resource_types.py).

The oracle is the generated type definitions the Bicep compiler loads; each kind of error the
check promises to catch is shown on a mutated copy of a real template.
"""

from __future__ import annotations

import hashlib
import importlib
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
INFRA = ROOT / "infra"
TYPES = INFRA / "types"

sys.path.insert(0, str(INFRA))
resource_types = importlib.import_module("resource_types")
bicep_syntax = importlib.import_module("bicep_syntax")


@pytest.fixture(scope="module")
def index():
    return resource_types.TypeIndex(TYPES)


def findings_for(index, relative: str, old: str, new: str) -> list[str]:
    """Check a copy of infra/<relative> with `old` replaced once by `new`; return the messages."""
    path = INFRA / relative
    text = path.read_text()
    assert old in text, f"mutation anchor not found in {relative}: {old!r}"
    mutated = text.replace(old, new, 1)
    return [str(f) for f in resource_types.check_template(path, mutated, index, ROOT)]


def test_templates_fit_the_published_types():
    """Every resource and module under infra/ passes the resource-type check as committed."""
    assert resource_types.check_infra(INFRA, TYPES) == []


def test_reader_sees_every_resource_and_module():
    """The Bicep reader finds as many declarations as a plain text search (none skipped)."""
    resources, modules = resource_types.count_declarations(INFRA)
    texts = [p.read_text() for p in INFRA.rglob("*.bicep")]
    assert resources == sum(len(re.findall(r"^\s*resource \w+ '", t, re.M)) for t in texts)
    assert modules == sum(len(re.findall(r"^module \w+ '", t, re.M)) for t in texts)
    assert resources >= 20 and modules >= 8


def test_type_files_are_the_documented_copies():
    """Each file in infra/types/ is listed in its README with the file's exact SHA-256."""
    readme = (TYPES / "README.md").read_text()
    files = sorted(TYPES.glob("*.json"))
    assert files
    for path in files:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert f"| `{path.name}` |" in readme, f"{path.name} not listed"
        assert f"`{digest}`" in readme, f"{path.name} differs from its documented copy"


MUTATIONS = {
    "unknown resource type": (
        "app/servicebus.bicep", "resource queue 'queues' = {", "resource queue 'queuez' = {",
        "unknown resource type Microsoft.ServiceBus/namespaces/queuez"),
    "unknown API version": (
        "app/identity.bicep", "userAssignedIdentities@2023-01-31",
        "userAssignedIdentities@2023-02-31", "unknown API version 2023-02-31"),
    "unknown property": (
        "app/servicebus.bicep", "maxDeliveryCount: maxDeliveryCount",
        "maxDeliveryCounts: maxDeliveryCount",
        "properties: unknown property maxDeliveryCounts (did you mean maxDeliveryCount?)"),
    "read-only property (nested)": (
        "app/servicebus.bicep", "maxDeliveryCount: maxDeliveryCount",
        "maxDeliveryCount: maxDeliveryCount\n      messageCount: 5",
        "properties.messageCount is read-only"),
    "read-only property (top level)": (
        "app/identity.bicep", "  location: location\n", "  location: location\n  id: 'x'\n",
        "identity (Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31).id is read-only"),
    "wrong literal type (bool)": (
        "app/servicebus.bicep", "disableLocalAuth: true", "disableLocalAuth: 'true'",
        "properties.disableLocalAuth: expects bool, given string \"true\""),
    "wrong literal type (int)": (
        "app/servicebus.bicep", "maxSizeInMegabytes: 1024", "maxSizeInMegabytes: '1024'",
        "properties.maxSizeInMegabytes: expects int, given string \"1024\""),
    "wrong enum value (in a ternary branch)": (
        "app/servicebus.bicep", "tier: 'Standard'", "tier: 'Standart'",
        "sku.tier: expects 'Basic' | 'Standard' | 'Premium', given string \"Standart\""),
    "integer out of range": (
        "core/storage.bicep", "days: 7", "days: 400",
        "deleteRetentionPolicy.days: 400 is above the maximum 365"),
    "object where a string is expected": (
        "core/storage.bicep", "accessTier: 'Hot'", "accessTier: {\n      tier: 'Hot'\n    }",
        "properties.accessTier: expects 'Hot' | 'Cool' | 'Premium' | 'Cold', given object"),
    "missing required property": (
        "app/identity.bicep", "  location: location\n", "",
        "identity (Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31): "
        "missing required property location"),
    "missing required nested property": (
        "app/alerts.bicep", "          threshold: 0\n", "",
        "properties.criteria.allOf[0]: missing required property threshold"),
    "unknown discriminator value": (
        "app/alerts.bicep", "'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'",
        "'Microsoft.Azure.Monitor.SingleResourceMetricCriteria'",
        "properties.criteria.odata.type: \"Microsoft.Azure.Monitor.SingleResourceMetricCriteria\""
        " is not one of"),
    "missing required property in a loop": (
        "app/queue-access.bicep", "    principalId: senderId\n", "",
        "upstreamSenders (Microsoft.Authorization/roleAssignments@2022-04-01).properties: "
        "missing required property principalId"),
    "wrong enum value under a condition": (
        "app/queue-access.bicep", "    roleDefinitionId: subscriptionResourceId("
        "'Microsoft.Authorization/roleDefinitions', dataSenderRoleId)\n    principalId: "
        "functionPrincipalId\n    principalType: 'ServicePrincipal'",
        "    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', "
        "dataSenderRoleId)\n    principalId: functionPrincipalId\n    principalType: 42",
        "functionSender (Microsoft.Authorization/roleAssignments@2022-04-01).properties."
        "principalType: expects"),
    "property set on an existing resource": (
        "app/queue-access.bicep", "  resource queue 'queues' existing = {\n    name: queueName\n",
        "  resource queue 'queues' existing = {\n    name: queueName\n    properties: {}\n",
        "queue (Microsoft.ServiceBus/namespaces/queues@2022-10-01-preview).properties: an existing"
        " resource sets only its name"),
    "Graph extension resource missing a required property": (
        "app/graph-app-role.bicep", "  appRoleId: calendarsReadWriteRoleId\n", "",
        "calendarsReadWrite (Microsoft.Graph/appRoleAssignedTo@v1.0): missing required property "
        "appRoleId"),
    "module parameter that does not exist": (
        "main.bicep", "    retentionInDays: logRetentionInDays\n",
        "    retentionDays: logRetentionInDays\n",
        "module monitoring: ./core/monitoring.bicep has no parameter retentionDays "
        "(did you mean retentionInDays?)"),
    "module required parameter not passed": (
        "main.bicep", "    functionPrincipalId: identity.outputs.principalId\n  }\n}\n\n"
        "module serviceBus", "  }\n}\n\nmodule serviceBus",
        "module monitoring: required parameter functionPrincipalId of ./core/monitoring.bicep is "
        "not passed"),
    "module parameter with a literal of the wrong type": (
        "main.bicep", "    retentionInDays: logRetentionInDays\n", "    retentionInDays: '30'\n",
        "module monitoring: parameter retentionInDays is int, given string \"30\""),
    "resource at a scope its type does not allow": (
        "main.bicep", "targetScope = 'subscription'", "targetScope = 'resourceGroup'",
        "resource rg: Microsoft.Resources/resourceGroups@2022-09-01 cannot be deployed at "
        "resourceGroup scope (only at: subscription)"),
    "extension resource whose type cannot extend": (
        "core/monitoring.bicep", "resource applicationInsights 'Microsoft.Insights/components@"
        "2020-02-02' = {\n", "resource applicationInsights 'Microsoft.Insights/components@"
        "2020-02-02' = {\n  scope: logAnalytics\n",
        "resource applicationInsights: Microsoft.Insights/components@2020-02-02 cannot be "
        "deployed at extension scope (only at: resourceGroup)"),
    "module parameter fed from a parameter of another type": (
        "main.bicep", "    senderPrincipalIds: senderPrincipalIdList\n",
        "    senderPrincipalIds: senderPrincipalIds\n",
        "module queueAccess: parameter senderPrincipalIds is array, given string parameter "
        "senderPrincipalIds"),
}


@pytest.mark.parametrize("kind", MUTATIONS)
def test_mutated_template_is_caught(index, kind):
    """A copy of a real template with exactly one error yields exactly that one finding."""
    relative, old, new, expected = MUTATIONS[kind]
    findings = findings_for(index, relative, old, new)
    assert len(findings) == 1, findings
    assert expected in findings[0]
    assert findings[0].startswith(f"infra/{relative}:")


def test_parent_must_be_the_parent_type(index, tmp_path):
    """`parent:` naming a resource of another type is reported; the right parent passes."""
    template = """
resource ns 'Microsoft.ServiceBus/namespaces@2022-10-01-preview' existing = {
  name: 'sb'
}
resource queue 'Microsoft.ServiceBus/namespaces/queues@2022-10-01-preview' = {
  parent: ns
  name: 'q'
}
resource wrong 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: ns
  name: 'default'
}
"""
    path = tmp_path / "parent.bicep"
    findings = [str(f) for f in resource_types.check_template(path, template, index, tmp_path)]
    assert findings == [
        "parent.bicep:9: resource wrong: parent ns is a Microsoft.ServiceBus/namespaces, but "
        "Microsoft.Storage/storageAccounts/blobServices is not one of its child types"]


def test_unreadable_file_is_a_finding(index, tmp_path):
    """A file the reader cannot parse fails the check instead of being skipped."""
    path = tmp_path / "broken.bicep"
    findings = resource_types.check_template(path, "resource x 'A/b@1' = {\n  name: 'x\n}\n",
                                             index, tmp_path)
    assert len(findings) == 1
    assert "cannot read the file" in findings[0].message


def test_reader_keeps_literal_values():
    """Strings (with escapes and ''' blocks), integers, booleans and null are read as values."""
    template = bicep_syntax.parse(
        "resource r 'A/b@1' = {\n  s: 'it\\'s'\n  m: '''\nline'''\n  i: -5\n  b: false\n"
        "  n: null\n  e: '${x}y'\n  c: f(1)\n}\n")
    entries = {e.key: e.value for e in bicep_syntax.body_object(template.resources[0].body).entries}
    assert entries["s"].value == "it's"
    assert entries["m"].value == "line"
    assert entries["i"].value == -5
    assert entries["b"].value is False
    assert entries["n"].value is None
    assert isinstance(entries["e"], bicep_syntax.StringExpr)
    assert isinstance(entries["c"], bicep_syntax.Expr)
