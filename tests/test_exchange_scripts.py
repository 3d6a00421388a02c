"""The Exchange Online scripts in infra/exchange/ read cmdlet output safely.

No PowerShell runs here, so these are static checks of the script text.
"""

from __future__ import annotations

import re
from pathlib import Path

EXCHANGE = Path(__file__).resolve().parents[1] / "infra" / "exchange"
TEST_SCRIPT = EXCHANGE / "Test-ScopedCalendarAccess.ps1"


def code_lines(path: Path) -> list[str]:
    """The script's lines without comments and comment-based help."""
    text = re.sub(r"<#.*?#>", "", path.read_text(), flags=re.DOTALL)
    return [line.split("#", 1)[0] for line in text.splitlines()]


def test_in_scope_is_compared_explicitly():
    """`InScope` is compared with -eq, never used as a truth value.

    Test-ServicePrincipalAuthorization can report InScope as text ("Not Run", "False"), and any
    non-empty string is true in PowerShell, so a bare `$_.InScope` would report an out-of-scope
    mailbox as reachable.
    """
    uses = [line for line in code_lines(TEST_SCRIPT) if "InScope" in line
            and not re.search(r"\$InScopeMailbox", line)]
    assert uses, "the script no longer reads InScope"
    for line in uses:
        assert re.search(r"\[string\]\s*\$_\.InScope\s+-eq\s+'True'", line), line


def test_no_script_uses_a_result_property_as_a_truth_value():
    """No script in infra/exchange/ filters on a bare `$_.Property` (truthy strings pass)."""
    for path in sorted(EXCHANGE.glob("*.ps1")):
        for line in code_lines(path):
            for match in re.finditer(r"(-and|-or|-not|\{)\s*\$_\.(\w+)\s*(\}|\)|-and|-or)", line):
                raise AssertionError(f"{path.name}: bare $_.{match.group(2)} in: {line.strip()}")
