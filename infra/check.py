"""Static checks of the Bicep templates, run by `make infra-check` inside `.venv-checkov`.

No Bicep compiler is available offline, so this script:

1. parses every `.bicep` file under infra/ with pycep (the parser checkov itself uses) and fails
   when a file does not parse or declares nothing;
2. scans the templates with checkov (`--framework bicep`) and fails on any failed check, on any
   parsing error, or when the scan saw no resources (a scan that silently parsed nothing);
3. fails when an inline `// checkov:skip=ID: reason` has no reason or no longer matches a check
   (a stale skip would hide nothing and mislead the reader);
4. checks every resource and module against Azure's published resource types in infra/types/
   (infra/resource_types.py): types and API versions exist, property paths exist and are
   writable, literal values fit, required properties are present, module parameters match.

pycep 0.5.1, which checkov 3.3.30 pins, predates Bicep's `extension` statement (used by
app/graph-app-role.bicep for the Microsoft Graph extension). The scan therefore runs on a scratch
copy in which exactly that statement is turned into a comment; nothing else is changed, and the
line numbers stay the same.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from pycep import BicepParser
from resource_types import check_infra, count_declarations

INFRA = Path(__file__).resolve().parent
EXTENSION_STATEMENT = re.compile(r"^(\s*)extension\s+[A-Za-z_][A-Za-z0-9_]*\s*$", re.MULTILINE)
INLINE_SKIP = re.compile(r"//\s*checkov:skip=(CKV2?_[A-Z]+_\d+)(?::\s*(.*))?$", re.MULTILINE)


def main() -> int:
    sources = sorted(INFRA.rglob("*.bicep"))
    if not sources:
        print("infra-check: no .bicep files found under infra/", file=sys.stderr)
        return 1
    errors: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bicep-scan-") as scratch:
        root = Path(scratch) / "infra"
        shutil.copytree(INFRA, root, ignore=shutil.ignore_patterns("__pycache__"))
        for path in sorted(root.rglob("*.bicep")):
            path.write_text(hide_extension_statements(path.read_text()))
        errors += parse_each(root)
        report, scan_errors = scan(root)
        errors += scan_errors
    errors += check_inline_skips(sources, report)
    type_findings = check_infra(INFRA, INFRA / "types")
    errors += [f"resource types: {finding}" for finding in type_findings]
    for skipped in report.get("skipped_checks", []):
        print(f"  skipped {skipped['check_id']} in {skipped['file_path']}: "
              f"{skipped['check_result'].get('suppress_comment', '').strip()}")
    if errors:
        print("infra-check FAILED:", *errors, sep="\n  ", file=sys.stderr)
        return 1
    summary = report["summary"]
    print(f"infra-check OK: {len(sources)} Bicep files parsed;"
          f" checkov {summary['checkov_version']}: {summary['passed']} passed,"
          f" {summary['failed']} failed, {summary['skipped']} skipped (with reasons),"
          f" {summary['parsing_errors']} parsing errors")
    resources, modules = count_declarations(INFRA)
    type_files = len(list((INFRA / "types").glob("*.json")))
    print(f"resource types OK: {resources} resources and {modules} modules checked against"
          f" {type_files} type files in infra/types/")
    return 0


def hide_extension_statements(text: str) -> str:
    """Turn `extension <alias>` lines into comments (pycep 0.5.1 cannot parse them)."""
    return EXTENSION_STATEMENT.sub(r"\1// extension statement (hidden from pycep 0.5.1)", text)


def parse_each(root: Path) -> list[str]:
    """Parse every file the way checkov does; report files that fail or declare nothing."""
    parser = BicepParser(add_line_numbers=True)
    errors = []
    for path in sorted(root.rglob("*.bicep")):
        name = path.relative_to(root.parent)
        try:
            template = parser.parse(text=path.read_text())
        except Exception as exc:  # pycep raises lark's exception classes
            errors.append(f"{name}: does not parse: {str(exc).splitlines()[0]}")
            continue
        if not (template.get("resources") or template.get("modules")):
            errors.append(f"{name}: parsed, but declares no resource or module")
    return errors


def scan(root: Path) -> tuple[dict, list[str]]:
    """Run checkov on the scratch copy; return its bicep report and any errors."""
    checkov = Path(sys.executable).with_name("checkov")
    command = [str(checkov), "--directory", str(root), "--framework", "bicep",
               "--skip-download", "--output", "json"]
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    try:
        output = json.loads(done.stdout)
    except json.JSONDecodeError:
        return {}, [f"checkov printed no JSON (exit {done.returncode}): {done.stderr[-2000:]}"]
    reports = output if isinstance(output, list) else [output]
    report = next((r for r in reports if r.get("check_type") == "bicep"), None)
    if report is None:
        return {}, ["checkov produced no bicep report: nothing was scanned"]
    results = {**report.get("results", {}), "summary": report["summary"]}
    errors = []
    summary = report["summary"]
    if summary.get("parsing_errors") or results.get("parsing_errors"):
        errors.append(f"checkov could not parse: {results.get('parsing_errors')}")
    if not summary.get("resource_count"):
        errors.append("checkov scanned no resources")
    if not (summary.get("passed") or summary.get("failed") or summary.get("skipped")):
        errors.append("checkov ran no checks")
    for failed in results.get("failed_checks", []):
        lines = failed.get("file_line_range", ["?", "?"])
        errors.append(f"{failed['check_id']} failed: {failed['check_name']} "
                      f"({failed['resource']}, infra{failed['file_path']}:{lines[0]}-{lines[1]})")
    return results, errors


def check_inline_skips(sources: list[Path], report: dict) -> list[str]:
    """Each inline skip needs a reason and must match a check checkov actually skipped."""
    skipped = {
        (s["file_path"].lstrip("/"), s["check_id"]) for s in report.get("skipped_checks", [])
    }
    errors = []
    for path in sources:
        relative = path.relative_to(INFRA).as_posix()
        for match in INLINE_SKIP.finditer(path.read_text()):
            check_id, reason = match.group(1), (match.group(2) or "").strip()
            if not reason:
                errors.append(f"infra/{relative}: skip of {check_id} gives no reason")
            if report and (relative, check_id) not in skipped:
                errors.append(f"infra/{relative}: skip of {check_id} matches no check (stale)")
    return errors


if __name__ == "__main__":
    sys.exit(main())
