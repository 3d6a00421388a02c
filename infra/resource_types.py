"""Checks the Bicep templates against Azure's published resource types (infra/types/).

The files in infra/types/ are the generated type definitions that the Bicep compiler itself loads
(see infra/types/README.md). For every `resource 'Type@apiVersion'` under infra/ this check
reports:

- a type or API version that has no definition;
- a property path that the type does not define at that API version;
- a property the type marks read-only (or, on an `existing` resource, anything but its name,
  identifiers, `scope` and `parent`);
- a literal value that does not fit the property's type (string, string literal / enum, integer
  with its range, boolean, object, array; string lengths and patterns);
- a required property that is missing, at the top and in every nested object the template
  writes out;
- a resource declared at a scope (the file's targetScope, or `scope: <resource>` for an
  extension resource) where its type cannot be deployed (or, when `existing`, read).

Modules are checked against the module file: the file exists, every parameter passed is declared
there, every parameter without a default is passed, and a literal or a parameter of the calling
file passed to it has the declared type (string, int, bool, array, object). Values known only at
deployment time (parameters, function calls, operators) are not judged; both branches of
`a ? b : c` are.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from bicep_syntax import (
    ArrayNode,
    BicepSyntaxError,
    Expr,
    ForNode,
    IfNode,
    Literal,
    ModuleDecl,
    Node,
    ObjectNode,
    ParamDecl,
    ResourceDecl,
    StringExpr,
    Template,
    Ternary,
    body_object,
    parse,
)

# Property flags of bicep-types (TypePropertyFlags).
REQUIRED, READ_ONLY, IDENTIFIER = 1, 2, 16
# Resource flags of bicep-types (ResourceFlags).
RESOURCE_READ_ONLY = 1
# Keys that Bicep itself adds to every resource body (they are not in the type definitions).
LANGUAGE_KEYS = ("parent", "scope", "dependsOn")
MODULE_KEYS = ("name", "params", "scope", "dependsOn")
# Scope bits of bicep-types (ScopeType); an extension resource is one with `scope: <resource>`.
SCOPES = {"tenant": 1, "managementGroup": 2, "subscription": 4, "resourceGroup": 8,
          "extension": 16}
SIMPLE_TYPES = ("string", "int", "bool", "array", "object")


@dataclass(frozen=True)
class Finding:
    """One problem: file (relative to the repository), line, message."""

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


class TypeIndex:
    """Every `Type@apiVersion` defined by the JSON files in one directory."""

    def __init__(self, directory: Path) -> None:
        self.resources: dict[str, tuple[list[dict], dict]] = {}
        self.namespaces: dict[str, set[str]] = {}
        files = sorted(directory.glob("*.json"))
        if not files:
            raise FileNotFoundError(f"no type definitions (*.json) in {directory}")
        for path in files:
            types = json.loads(path.read_text())
            for entry in types:
                if entry.get("$type") != "ResourceType":
                    continue
                name, _, version = entry["name"].rpartition("@")
                self.resources[f"{name}@{version}".lower()] = (types, entry)
                namespace = name.split("/")[0].lower()
                self.namespaces.setdefault(namespace, set()).add(version.lower())

    def lookup(self, type_name: str, version: str) -> tuple[list[dict], dict] | str:
        """The (types, ResourceType entry) for a type, or a message saying why there is none."""
        found = self.resources.get(f"{type_name}@{version}".lower())
        if found:
            return found
        namespace = type_name.split("/")[0].lower()
        versions = self.namespaces.get(namespace)
        if not versions:
            return (f"unknown resource type {type_name}: no definitions for namespace "
                    f"{type_name.split('/')[0]} in infra/types/")
        if version.lower() not in versions:
            return (f"unknown API version {version} for {type_name}: infra/types/ defines "
                    f"{type_name.split('/')[0]} at {', '.join(sorted(versions))} only (add the "
                    "generated types.json of a real version, see infra/types/README.md)")
        known = sorted(key.rpartition("@")[0] for key in self.resources
                       if key.endswith(f"@{version.lower()}") and key.startswith(namespace))
        hint = difflib.get_close_matches(type_name.lower(), known, n=1)
        return (f"unknown resource type {type_name} at API version {version}"
                + (f" (did you mean {hint[0]}?)" if hint else ""))


def check_files(paths: list[Path], index: TypeIndex, root: Path) -> list[Finding]:
    """Check every Bicep file; `root` only shortens the paths in the findings."""
    findings: list[Finding] = []
    for path in paths:
        findings += check_template(path, path.read_text(), index, root)
    return findings


def check_template(path: Path, text: str, index: TypeIndex, root: Path) -> list[Finding]:
    """Check one Bicep file's resources and modules."""
    name = path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)
    try:
        template = parse(text)
    except BicepSyntaxError as exc:
        return [Finding(name, 0, f"cannot read the file: {exc}")]
    checker = _Checker(name, index)
    checker.symbols = {r.symbol: r.type_ref.partition("@")[0] for r in template.resources}
    checker.caller_params = template.params
    checker.target_scope = template.target_scope
    for resource in template.resources:
        checker.resource(resource, parent_type=None, parent_version=None)
    for module in template.modules:
        checker.module(module, path.parent)
    return checker.findings


class _Checker:
    def __init__(self, path: str, index: TypeIndex) -> None:
        self.path = path
        self.index = index
        self.findings: list[Finding] = []
        self.symbols: dict[str, str] = {}  # top-level resource symbol -> type name
        self.caller_params: dict[str, ParamDecl] = {}  # the checked file's own parameters
        self.target_scope = "resourceGroup"

    def report(self, line: int, message: str) -> None:
        self.findings.append(Finding(self.path, line, message))

    # resources
    def resource(self, decl: ResourceDecl, parent_type: str | None,
                 parent_version: str | None) -> None:
        type_name, _, version = decl.type_ref.partition("@")
        if parent_type is not None:
            type_name = f"{parent_type}/{type_name}"
            version = version or parent_version or ""
        if not version:
            self.report(decl.line, f"resource {decl.symbol}: '{decl.type_ref}' has no API version")
            return
        body = body_object(decl.body)
        if parent_type is None and body is not None:
            self.parent(decl, type_name, body)
        found = self.index.lookup(type_name, version)
        if isinstance(found, str):
            self.report(decl.line, f"resource {decl.symbol}: {found}")
        else:
            types, entry = found
            if entry.get("flags", 0) & RESOURCE_READ_ONLY and not decl.existing:
                self.report(decl.line, f"resource {decl.symbol}: {type_name}@{version} is "
                            "read-only; it can only be declared `existing`")
            if parent_type is None and body is not None:
                self.scope(decl, f"{type_name}@{version}", entry, body)
            if body is not None:
                where = f"{decl.symbol} ({type_name}@{version})"
                for finding in _TypeCheck(types, decl.existing).object(
                        body, _resolve(types, entry["body"]), where, top=True):
                    self.report(*finding)
        for child in body.children if body else []:
            self.resource(child, type_name, version)

    def scope(self, decl: ResourceDecl, name: str, entry: dict, body: ObjectNode) -> None:
        """The type can be deployed (or, when `existing`, read) at the scope it is declared at."""
        allowed = entry.get("readableScopes" if decl.existing else "writableScopes")
        if allowed is None:
            return  # an extension's type without scope information (Microsoft Graph)
        value = next((e.value for e in body.entries if e.key == "scope"), None)
        if value is None:
            scope = self.target_scope
        elif isinstance(value, Expr) and value.symbol in self.symbols:
            scope = "extension"
        else:
            return  # scope: resourceGroup(...), subscription(), ...: known at deployment only
        if scope in SCOPES and not allowed & SCOPES[scope]:
            where = [n for n, bit in SCOPES.items() if allowed & bit]
            action = "read" if decl.existing else "deployed"
            self.report(decl.line, f"resource {decl.symbol}: {name} cannot be {action} at "
                        f"{scope} scope (only at: {', '.join(where) or 'no scope'})")

    def parent(self, decl: ResourceDecl, type_name: str, body: ObjectNode) -> None:
        """`parent: p` must name a resource whose type is this type minus its last segment."""
        value = next((e.value for e in body.entries if e.key == "parent"), None)
        if not (isinstance(value, Expr) and value.symbol in self.symbols):
            return
        parent_type = self.symbols[value.symbol]
        if type_name.rpartition("/")[0].lower() != parent_type.lower():
            self.report(decl.line, f"resource {decl.symbol}: parent {value.symbol} is a "
                        f"{parent_type}, but {type_name} is not one of its child types")

    # modules
    def module(self, decl: ModuleDecl, directory: Path) -> None:
        if re.match(r"^(br|ts)[:/]", decl.path):
            return  # registry module: its parameters are not available offline
        target = directory / decl.path
        if not target.is_file():
            self.report(decl.line, f"module {decl.symbol}: {decl.path} does not exist")
            return
        try:
            params = parse(target.read_text()).params
        except BicepSyntaxError as exc:
            self.report(decl.line, f"module {decl.symbol}: cannot read {decl.path}: {exc}")
            return
        body = body_object(decl.body)
        if body is None:
            return
        passed: dict[str, Node] = {}
        for entry in body.entries:
            if entry.key is not None and entry.key not in MODULE_KEYS:
                self.report(entry.line, f"module {decl.symbol}: unknown property {entry.key}")
            if entry.key == "params" and isinstance(entry.value, ObjectNode):
                if entry.value.spread:
                    return
                passed = {e.key: e.value for e in entry.value.entries if e.key}
                for param_entry in entry.value.entries:
                    self.module_param(decl, params, param_entry.key, param_entry.value,
                                      param_entry.line)
        for name, param in params.items():
            if param.required and name not in passed:
                self.report(decl.line, f"module {decl.symbol}: required parameter {name} of "
                            f"{decl.path} is not passed")

    def module_param(self, decl: ModuleDecl, params: dict, name: str | None, value: Node,
                     line: int) -> None:
        if name is None:
            return
        if name not in params:
            hint = difflib.get_close_matches(name, list(params), n=1)
            self.report(line, f"module {decl.symbol}: {decl.path} has no parameter {name}"
                        + (f" (did you mean {hint[0]}?)" if hint else ""))
            return
        expected = params[name].type_name
        if expected not in SIMPLE_TYPES:
            return
        actual = _literal_kind(value)
        if actual and actual != expected:
            self.report(line, f"module {decl.symbol}: parameter {name} is {expected}, "
                        f"given {actual} {_show(value)}".rstrip())
        passed = self.caller_params.get(value.symbol) if isinstance(value, Expr) else None
        if passed and passed.type_name in SIMPLE_TYPES and passed.type_name != expected:
            self.report(line, f"module {decl.symbol}: parameter {name} is {expected}, given "
                        f"{passed.type_name} parameter {passed.name}")


def _literal_kind(node: Node) -> str | None:
    if isinstance(node, Literal):
        value = node.value
        if isinstance(value, bool):
            return "bool"
        if isinstance(value, int):
            return "int"
        if isinstance(value, str):
            return "string"
        return None
    if isinstance(node, StringExpr):
        return "string"
    if isinstance(node, ObjectNode):
        return "object"
    if isinstance(node, ArrayNode | ForNode):
        return "array"
    return None


def _show(node: Node) -> str:
    if isinstance(node, Literal):
        return "null" if node.value is None else json.dumps(node.value)
    return "(interpolated)" if isinstance(node, StringExpr) else ""


def _resolve(types: list[dict], ref: dict) -> dict:
    return types[int(ref["$ref"].removeprefix("#/"))]


def _describe(types: list[dict], kind: dict) -> str:
    """A short human name for a type: 'string', "'a' | 'b'", 'object', ..."""
    name = kind["$type"]
    if name == "StringLiteralType":
        return f"'{kind['value']}'"
    if name == "UnionType":
        return " | ".join(_describe(types, _resolve(types, e)) for e in kind["elements"])
    return {"StringType": "string", "IntegerType": "int", "BooleanType": "bool",
            "ObjectType": "object", "DiscriminatedObjectType": "object", "ArrayType": "array",
            "AnyType": "any", "NullType": "null"}.get(name, name)


class _TypeCheck:
    """Checks one resource body against its type; returns (line, message) pairs."""

    def __init__(self, types: list[dict], existing: bool) -> None:
        self.types = types
        self.existing = existing

    def value(self, node: Node, kind: dict, where: str) -> list[tuple[int, str]]:
        if isinstance(node, Ternary):
            return self.value(node.when_true, kind, where) + self.value(
                node.when_false, kind, where)
        if isinstance(node, Expr | IfNode):
            return []
        name = kind["$type"]
        if name == "AnyType":
            return []
        if name == "UnionType":
            return self.union(node, kind, where)
        if name == "DiscriminatedObjectType":
            return self.discriminated(node, kind, where)
        if name == "ObjectType":
            if isinstance(node, ObjectNode):
                return self.object(node, kind, where, top=False)
            return self.mismatch(node, kind, where)
        if name == "ArrayType":
            item = _resolve(self.types, kind["itemType"])
            if isinstance(node, ForNode):
                return self.value(node.body, item, f"{where}[]")
            if isinstance(node, ArrayNode):
                found = []
                for position, element in enumerate(node.items):
                    found += self.value(element, item, f"{where}[{position}]")
                return found
            return self.mismatch(node, kind, where)
        return self.scalar(node, kind, where)

    def scalar(self, node: Node, kind: dict, where: str) -> list[tuple[int, str]]:
        name = kind["$type"]
        if isinstance(node, StringExpr):
            return [] if name in ("StringType", "StringLiteralType") else self.mismatch(
                node, kind, where)
        if not isinstance(node, Literal):
            return self.mismatch(node, kind, where)
        value = node.value
        if name == "StringLiteralType":
            return [] if value == kind["value"] else self.mismatch(node, kind, where)
        if name == "StringType":
            if not isinstance(value, str):
                return self.mismatch(node, kind, where)
            problems = []
            if "minLength" in kind and len(value) < kind["minLength"]:
                problems.append(f"shorter than {kind['minLength']} characters")
            if "maxLength" in kind and len(value) > kind["maxLength"]:
                problems.append(f"longer than {kind['maxLength']} characters")
            if "pattern" in kind and not _matches(kind["pattern"], value):
                problems.append(f"does not match the pattern {kind['pattern']}")
            return [(node.line, f"{where}: {json.dumps(value)} is {p}") for p in problems]
        if name == "IntegerType":
            if type(value) is not int:
                return self.mismatch(node, kind, where)
            if "minValue" in kind and value < kind["minValue"]:
                return [(node.line, f"{where}: {value} is below the minimum {kind['minValue']}")]
            if "maxValue" in kind and value > kind["maxValue"]:
                return [(node.line, f"{where}: {value} is above the maximum {kind['maxValue']}")]
            return []
        if name == "BooleanType":
            return [] if isinstance(value, bool) else self.mismatch(node, kind, where)
        if name == "NullType":
            return [] if value is None else self.mismatch(node, kind, where)
        return []  # a type this check does not model (e.g. a function type)

    def mismatch(self, node: Node, kind: dict, where: str) -> list[tuple[int, str]]:
        return [(node.line, f"{where}: expects {_describe(self.types, kind)}, "
                 f"given {_literal_kind(node) or 'a value'} {_show(node)}".rstrip())]

    def union(self, node: Node, kind: dict, where: str) -> list[tuple[int, str]]:
        results = [self.value(node, _resolve(self.types, element), where)
                   for element in kind["elements"]]
        if any(not found for found in results):
            return []
        objects = [found for element, found in zip(kind["elements"], results, strict=True)
                   if _resolve(self.types, element)["$type"] in (
                       "ObjectType", "DiscriminatedObjectType")]
        if isinstance(node, ObjectNode) and objects:  # the closest object variant explains best
            return min(objects, key=len)
        return self.mismatch(node, kind, where)

    def discriminated(self, node: Node, kind: dict, where: str) -> list[tuple[int, str]]:
        if not isinstance(node, ObjectNode):
            return self.mismatch(node, kind, where)
        key = kind["discriminator"]
        chosen = next((e.value for e in node.entries if e.key == key), None)
        allowed = sorted(kind["elements"])
        if chosen is None:
            if self.existing:
                return []
            return [(node.line, f"{where}: missing required property {key} "
                     f"(one of {', '.join(allowed)})")]
        if not (isinstance(chosen, Literal) and isinstance(chosen.value, str)):
            return []  # the variant is chosen at deployment time
        if chosen.value not in kind["elements"]:
            return [(chosen.line, f"{where}.{key}: {json.dumps(chosen.value)} is not one of "
                     f"{', '.join(allowed)}")]
        variant = _resolve(self.types, kind["elements"][chosen.value])
        merged = {"$type": "ObjectType", "name": variant.get("name", ""),
                  "properties": {**kind.get("baseProperties", {}),
                                 **variant.get("properties", {})}}
        return self.object(node, merged, where, top=False)

    def object(self, node: ObjectNode, kind: dict, where: str,
               top: bool) -> list[tuple[int, str]]:
        properties: dict = kind.get("properties", {})
        additional = kind.get("additionalProperties")
        found: list[tuple[int, str]] = []
        seen: set[str] = set()
        for entry in node.entries:
            key = entry.key
            if key is None:
                if additional and not node.spread:
                    found += self.value(entry.value, _resolve(self.types, additional), where)
                continue
            if key in seen:
                found.append((entry.line, f"{where}: property {key} is set twice"))
            seen.add(key)
            path = f"{where}.{key}"
            if top and key in LANGUAGE_KEYS:
                continue
            if key not in properties:
                if additional:
                    found += self.value(entry.value, _resolve(self.types, additional), path)
                    continue
                hint = difflib.get_close_matches(key, list(properties), n=1, cutoff=0.6)
                found.append((entry.line, f"{where}: unknown property {key}"
                              + (f" (did you mean {hint[0]}?)" if hint else "")))
                continue
            flags = properties[key].get("flags", 0)
            if flags & READ_ONLY:
                found.append((entry.line, f"{path} is read-only"))
                continue
            if self.existing and top and key != "name" and not flags & IDENTIFIER:
                found.append((entry.line, f"{path}: an existing resource sets only its name, "
                              "identifiers, scope and parent"))
                continue
            found += self.value(entry.value, _resolve(self.types, properties[key]["type"]), path)
        if not self.existing and not node.spread:
            for key, prop in properties.items():
                flags = prop.get("flags", 0)
                if flags & REQUIRED and not flags & READ_ONLY and key not in seen:
                    found.append((node.line, f"{where}: missing required property {key}"))
        return found


def _matches(pattern: str, value: str) -> bool:
    try:
        return re.search(pattern, value) is not None
    except re.error:
        return True  # a .NET pattern Python cannot read: not judged


def check_infra(infra: Path, types_dir: Path) -> list[Finding]:
    """Check every .bicep file under `infra` against the definitions in `types_dir`."""
    index = TypeIndex(types_dir)
    return check_files(sorted(infra.rglob("*.bicep")), index, infra.parent)


def count_declarations(infra: Path) -> tuple[int, int]:
    """(resources including nested children, modules) declared under `infra`."""
    resources = modules = 0
    for path in infra.rglob("*.bicep"):
        template: Template = parse(path.read_text())
        pending = list(template.resources)
        modules += len(template.modules)
        while pending:
            resource = pending.pop()
            resources += 1
            body = body_object(resource.body)
            pending += body.children if body else []
    return resources, modules
