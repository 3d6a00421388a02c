"""Reads the parts of a Bicep file that the resource-type check needs (infra/resource_types.py).

No Bicep compiler runs offline, so this is a small reader of Bicep's syntax: resource and module
declarations (with `existing`, `if (...)`, `[for ...]`, nested child resources and decorators),
parameter declarations, and every value assigned inside them. Values come back as a tree in which
literals (strings, integers, booleans, null), interpolated strings, objects, arrays, loops and
`a ? b : c` keep their shape; any other expression (a parameter, a function call, an operator) is
an `Expr` whose value is only known at deployment time. Everything else in a file (variables,
outputs, types, functions) is skipped statement by statement.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# --- tokens ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    kind: str  # ident, number, string, istring (interpolated), punct, newline, eof
    text: str
    line: int
    value: object = None


class BicepSyntaxError(ValueError):
    """The file is not Bicep this reader understands (with the line)."""


_PUNCT = ("...", "::", "==", "!=", "=~", "!~", "<=", ">=", "&&", "||", "??", ".?", "=>",
          "{", "}", "[", "]", "(", ")", ":", ",", ".", "?", "=", "<", ">", "+", "-", "*", "/",
          "%", "!", "@", "|")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"[0-9]+")
_ESCAPES = {"\\": "\\", "'": "'", "n": "\n", "r": "\r", "t": "\t", "$": "$"}


def tokenize(text: str) -> list[Token]:
    """Split Bicep source into tokens; comments are dropped, newlines kept (they separate)."""
    tokens: list[Token] = []
    index, line, length = 0, 1, len(text)
    while index < length:
        char = text[index]
        if char == "\n":
            tokens.append(Token("newline", "\n", line))
            line += 1
            index += 1
        elif char in " \t\r":
            index += 1
        elif text.startswith("//", index):
            end = text.find("\n", index)
            index = length if end < 0 else end
        elif text.startswith("/*", index):
            end = text.find("*/", index + 2)
            if end < 0:
                raise BicepSyntaxError(f"line {line}: unterminated /* comment")
            line += text.count("\n", index, end)
            index = end + 2
        elif text.startswith("'''", index):
            end = text.find("'''", index + 3)
            if end < 0:
                raise BicepSyntaxError(f"line {line}: unterminated ''' string")
            raw = text[index + 3:end]
            tokens.append(Token("string", raw, line, raw.removeprefix("\n")))
            line += raw.count("\n")
            index = end + 3
        elif char == "'":
            token, index = _read_string(text, index, line)
            tokens.append(token)
        elif match := _IDENT.match(text, index):
            tokens.append(Token("ident", match.group(), line))
            index = match.end()
        elif match := _NUMBER.match(text, index):
            tokens.append(Token("number", match.group(), line, int(match.group())))
            index = match.end()
        else:
            punct = next((p for p in _PUNCT if text.startswith(p, index)), None)
            if punct is None:
                raise BicepSyntaxError(f"line {line}: unexpected character {char!r}")
            tokens.append(Token("punct", punct, line))
            index += len(punct)
    tokens.append(Token("eof", "", line))
    return tokens


def _read_string(text: str, start: int, line: int) -> tuple[Token, int]:
    """Read a '...' string from `start`; `${...}` makes it an interpolated string."""
    index, parts, interpolated = start + 1, [], False
    while index < len(text):
        char = text[index]
        if char == "\\":
            escaped = text[index + 1:index + 2]
            if escaped == "u" and text.startswith("{", index + 2):
                end = text.index("}", index)
                parts.append(chr(int(text[index + 3:end], 16)))
                index = end + 1
                continue
            if escaped not in _ESCAPES:
                raise BicepSyntaxError(f"line {line}: unknown escape \\{escaped}")
            parts.append(_ESCAPES[escaped])
            index += 2
        elif char == "'":
            raw = text[start:index + 1]
            kind = "istring" if interpolated else "string"
            return Token(kind, raw, line, None if interpolated else "".join(parts)), index + 1
        elif text.startswith("${", index):
            interpolated = True
            index = _skip_interpolation(text, index + 2, line)
        elif char == "\n":
            raise BicepSyntaxError(f"line {line}: string not closed on its line")
        else:
            parts.append(char)
            index += 1
    raise BicepSyntaxError(f"line {line}: unterminated string")


def _skip_interpolation(text: str, index: int, line: int) -> int:
    """Return the index after the `}` that closes a `${` (nested braces and strings allowed)."""
    depth = 1
    while index < len(text):
        char = text[index]
        if char == "'":
            _, index = _read_string(text, index, line)
            continue
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return index + 1
        index += 1
    raise BicepSyntaxError(f"line {line}: unterminated ${{ in string")


# --- syntax tree -----------------------------------------------------------------------------


@dataclass
class Literal:
    """A value known from the source: str, int, bool or None (null)."""

    value: object
    line: int


@dataclass
class StringExpr:
    """An interpolated string: certainly a string, its value known only at deployment."""

    line: int


@dataclass
class Expr:
    """Any other expression (parameter, variable, function call, operator): value unknown."""

    line: int
    symbol: str | None = None  # set when the expression is one bare identifier


@dataclass
class Ternary:
    """`condition ? when_true : when_false`: either branch may be the value."""

    when_true: Node
    when_false: Node
    line: int


@dataclass
class Entry:
    """One `key: value` of an object; key is None when interpolated or for a `...spread`."""

    key: str | None
    value: Node
    line: int


@dataclass
class ObjectNode:
    entries: list[Entry]
    children: list[ResourceDecl]
    line: int
    spread: bool = False


@dataclass
class ArrayNode:
    items: list[Node]
    line: int


@dataclass
class ForNode:
    """`[for x in xs: body]`: the body is the value of every element."""

    body: Node
    line: int


@dataclass
class IfNode:
    """`if (condition) body` on a resource or module."""

    body: Node
    line: int


Node = Literal | StringExpr | Expr | Ternary | ObjectNode | ArrayNode | ForNode | IfNode


@dataclass
class ResourceDecl:
    symbol: str
    type_ref: str  # 'Namespace/type@version', or 'childType[@version]' inside a parent
    existing: bool
    body: Node
    line: int


@dataclass
class ModuleDecl:
    symbol: str
    path: str
    body: Node
    line: int


@dataclass
class ParamDecl:
    name: str
    type_name: str  # the first token of the type: string, int, bool, array, object, ...
    required: bool  # no default and not nullable
    line: int


@dataclass
class Template:
    target_scope: str = "resourceGroup"
    params: dict[str, ParamDecl] = field(default_factory=dict)
    resources: list[ResourceDecl] = field(default_factory=list)
    modules: list[ModuleDecl] = field(default_factory=list)


def parse(text: str) -> Template:
    """Parse Bicep source into the declarations the type check needs."""
    return _Parser(tokenize(text)).template()


def body_object(node: Node) -> ObjectNode | None:
    """The object a resource or module body declares, through `if (...)` and `[for ...]`."""
    while isinstance(node, IfNode | ForNode):
        node = node.body
    return node if isinstance(node, ObjectNode) else None


# --- parser ----------------------------------------------------------------------------------

_BINARY = {"??", "||", "&&", "==", "!=", "=~", "!~", "<", "<=", ">", ">=", "+", "-", "*", "/",
           "%"}
_OPEN = {"(": ")", "[": "]", "{": "}"}


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.index = 0

    # token helpers
    @property
    def token(self) -> Token:
        return self.tokens[self.index]

    def peek(self, offset: int = 1) -> Token:
        return self.tokens[min(self.index + offset, len(self.tokens) - 1)]

    def advance(self) -> Token:
        token = self.token
        self.index += 1
        return token

    def at(self, text: str, kind: str = "punct") -> bool:
        return self.token.kind == kind and self.token.text == text

    def expect(self, text: str, kind: str = "punct") -> Token:
        if not self.at(text, kind):
            raise BicepSyntaxError(
                f"line {self.token.line}: expected {text!r}, found {self.token.text!r}")
        return self.advance()

    def skip_newlines(self) -> None:
        while self.token.kind == "newline":
            self.advance()

    def skip_statement(self) -> None:
        depth = 0
        while self.token.kind != "eof":
            token = self.token
            if token.kind == "newline" and depth == 0:
                return
            if token.kind == "punct" and token.text in _OPEN:
                depth += 1
            elif token.kind == "punct" and token.text in _OPEN.values():
                depth -= 1
            self.advance()

    # statements
    def template(self) -> Template:
        template = Template()
        while True:
            self.skip_newlines()
            token = self.token
            if token.kind == "eof":
                return template
            if self.at("@"):
                self.decorator()
            elif token.kind == "ident" and token.text == "resource":
                template.resources.append(self.resource())
            elif token.kind == "ident" and token.text == "module":
                template.modules.append(self.module())
            elif token.kind == "ident" and token.text == "param":
                param = self.param()
                template.params[param.name] = param
            elif token.kind == "ident" and token.text == "targetScope":
                self.advance()
                self.expect("=")
                scope = self.expression()
                if isinstance(scope, Literal) and isinstance(scope.value, str):
                    template.target_scope = scope.value
            else:
                self.skip_statement()

    def decorator(self) -> None:
        self.expect("@")
        self.postfix()

    def param(self) -> ParamDecl:
        line = self.advance().line
        name = self.advance().text
        type_name = self.token.text
        start = self.index
        self.skip_statement()
        statement = self.tokens[start:self.index]
        has_default = any(t.kind == "punct" and t.text == "=" for t in statement)
        nullable = bool(statement) and statement[-1].text == "?" if not has_default else False
        return ParamDecl(name, type_name, not (has_default or nullable), line)

    def resource(self) -> ResourceDecl:
        line = self.expect("resource", "ident").line
        symbol = self.advance().text
        type_token = self.advance()
        if type_token.kind != "string":
            raise BicepSyntaxError(f"line {line}: resource {symbol} needs a literal type string")
        existing = self.at("existing", "ident")
        if existing:
            self.advance()
        self.expect("=")
        return ResourceDecl(symbol, str(type_token.value), existing, self.declaration_body(), line)

    def module(self) -> ModuleDecl:
        line = self.expect("module", "ident").line
        symbol = self.advance().text
        path_token = self.advance()
        if path_token.kind != "string":
            raise BicepSyntaxError(f"line {line}: module {symbol} needs a literal path")
        self.expect("=")
        return ModuleDecl(symbol, str(path_token.value), self.declaration_body(), line)

    def declaration_body(self) -> Node:
        """The value after `resource ... =` / `module ... =`: object, if-object or for-array."""
        if self.at("if", "ident"):
            line = self.advance().line
            self.expect("(")
            self.expression()
            self.expect(")")
            self.skip_newlines()
            return IfNode(self.declaration_body(), line)
        return self.expression()

    # expressions
    def expression(self) -> Node:
        condition = self.binary()
        if not self.at("?"):
            return condition
        line = self.advance().line
        self.skip_newlines()
        when_true = self.expression()
        self.skip_newlines()
        self.expect(":")
        self.skip_newlines()
        return Ternary(when_true, self.expression(), line)

    def binary(self) -> Node:
        left = self.unary()
        while self.token.kind == "punct" and self.token.text in _BINARY:
            self.advance()
            self.skip_newlines()
            self.unary()
            left = Expr(left.line)
        return left

    def unary(self) -> Node:
        if self.at("!") or self.at("-"):
            operator = self.advance()
            operand = self.unary()
            if operator.text == "-" and isinstance(operand, Literal) and type(operand.value) is int:
                return Literal(-operand.value, operand.line)
            return Expr(operator.line)
        return self.postfix()

    def postfix(self) -> Node:
        node = self.primary()
        while True:
            if self.at(".") or self.at(".?") or self.at("::"):
                self.advance()
                self.advance()
            elif self.at("[") or self.at("("):
                self.group()
            elif self.at("!") and self.peek().kind in ("newline", "eof", "punct"):
                self.advance()  # non-null assertion
            else:
                return node
            node = Expr(node.line)

    def group(self) -> None:
        """Skip a bracketed group (call arguments, index) whose contents do not matter."""
        closing = _OPEN[self.advance().text]
        depth = 1
        while depth:
            token = self.advance()
            if token.kind == "eof":
                raise BicepSyntaxError(f"line {token.line}: missing {closing!r}")
            if token.kind == "punct" and token.text in _OPEN:
                depth += 1
            elif token.kind == "punct" and token.text in _OPEN.values():
                depth -= 1

    def primary(self) -> Node:
        token = self.token
        if token.kind == "number":
            self.advance()
            return Literal(token.value, token.line)
        if token.kind == "string":
            self.advance()
            return Literal(token.value, token.line)
        if token.kind == "istring":
            self.advance()
            return StringExpr(token.line)
        if token.kind == "ident":
            self.advance()
            if token.text in ("true", "false"):
                return Literal(token.text == "true", token.line)
            if token.text == "null":
                return Literal(None, token.line)
            if self.at("=>"):  # lambda: x => body
                self.advance()
                self.expression()
                return Expr(token.line)
            return Expr(token.line, token.text)
        if self.at("("):
            self.group()
            if self.at("=>"):
                self.advance()
                self.expression()
            return Expr(token.line)
        if self.at("{"):
            return self.object()
        if self.at("["):
            return self.array()
        raise BicepSyntaxError(f"line {token.line}: unexpected {token.text!r}")

    def object(self) -> ObjectNode:
        line = self.expect("{").line
        node = ObjectNode([], [], line)
        while True:
            self.skip_separators()
            token = self.token
            if self.at("}"):
                self.advance()
                return node
            if self.at("@"):
                self.decorator()
            elif self.at("..."):
                self.advance()
                node.entries.append(Entry(None, self.expression(), token.line))
                node.spread = True
            elif (token.kind == "ident" and token.text == "resource"
                  and self.peek().kind == "ident" and self.peek(2).kind == "string"):
                node.children.append(self.resource())
            else:
                key = self.advance()
                if key.kind not in ("ident", "string", "istring"):
                    raise BicepSyntaxError(f"line {key.line}: unexpected {key.text!r} in object")
                self.expect(":")
                self.skip_newlines()
                name = None if key.kind == "istring" else (
                    key.text if key.kind == "ident" else str(key.value))
                node.entries.append(Entry(name, self.expression(), key.line))

    def array(self) -> Node:
        line = self.expect("[").line
        self.skip_newlines()
        if self.at("for", "ident"):
            self.advance()
            while not self.at("in", "ident"):
                if self.token.kind == "eof":
                    raise BicepSyntaxError(f"line {line}: for without in")
                self.advance()
            self.advance()
            self.expression()
            self.expect(":")
            self.skip_newlines()
            body = self.declaration_body()
            self.skip_newlines()
            self.expect("]")
            return ForNode(body, line)
        node = ArrayNode([], line)
        while True:
            self.skip_separators()
            if self.at("]"):
                self.advance()
                return node
            node.items.append(self.expression())

    def skip_separators(self) -> None:
        while self.token.kind == "newline" or self.at(","):
            self.advance()
