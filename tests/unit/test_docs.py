"""Docs cannot drift (STYLE habit 11): every setting, error code, CLI command and option, HTTP
route, metric and audit event must be documented under docs/, and what docs/ documents must still
exist."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import typer.main
from prometheus_client.parser import text_string_to_metric_families
from starlette.routing import Mount, Route

from seawall.app import create_app
from seawall.cli.main import app as cli_app
from seawall.config import CONFIG_ENV, Settings
from seawall.domain.audit import AuditAction
from seawall.errors import ErrorCode
from seawall.http.errors import STATUS
from seawall.http.metrics import Metrics

DOCS = Path(__file__).resolve().parents[2] / "docs"
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


@cache
def doc(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def table_rows(text: str, key: str) -> list[str]:
    """Markdown table rows whose first cell is `key` in backticks."""
    return [line for line in text.splitlines() if line.startswith(f"| `{key}` |")]


# -- settings -----------------------------------------------------------------------------------


def _default_text(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if value == "":
        return '`""`'
    return f"`{value}`"


@pytest.mark.parametrize("key", sorted(Settings.model_fields))
def test_every_setting_is_documented(key: str) -> None:
    rows = table_rows(doc("configuration.md"), key)
    assert len(rows) == 1, f"docs/configuration.md needs one table row for setting {key!r}"
    row = rows[0]
    assert f"`SEAWALL_{key.upper()}`" in row, f"{key}: the row must name SEAWALL_{key.upper()}"
    default = _default_text(Settings.model_fields[key].default)
    assert default in row, f"{key}: the row must give the default {default}"


def test_documented_environment_variables_exist() -> None:
    known = {f"SEAWALL_{key.upper()}" for key in Settings.model_fields} | {CONFIG_ENV}
    documented = set(re.findall(r"\bSEAWALL_[A-Z0-9_]*[A-Z0-9]", doc("configuration.md")))
    assert documented - known == set(), "docs/configuration.md names variables that do not exist"


def test_example_configuration_is_valid() -> None:
    blocks = re.findall(r"```toml\n(.*?)```", doc("configuration.md"), flags=re.DOTALL)
    assert blocks, "docs/configuration.md should show an example seawall.toml"
    for block in blocks:
        # model_validate checks the keys (extra="forbid") and values without reading env or files.
        Settings.model_validate(tomllib.loads(block))


# -- error codes --------------------------------------------------------------------------------


@pytest.mark.parametrize("code", list(ErrorCode), ids=lambda code: code.name)
def test_every_error_code_is_documented(code: ErrorCode) -> None:
    rows = table_rows(doc("errors.md"), code.name)
    assert len(rows) == 1, f"docs/errors.md needs one table row for {code.name}"
    status = STATUS[code]
    assert f"| {status} |" in rows[0], f"{code.name}: the row must give status {status}"
    if code.wire != code.name:
        assert f"`{code.wire}`" in rows[0], f"{code.name}: the row must name {code.wire}"


def test_documented_error_codes_exist() -> None:
    documented = set(re.findall(r"^\| `([A-Z_]+)` \|", doc("errors.md"), flags=re.MULTILINE))
    assert documented - {code.name for code in ErrorCode} == set()


# -- CLI ----------------------------------------------------------------------------------------


def _commands(command: Any, path: str) -> Iterator[tuple[str, Any]]:
    yield path, command
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from _commands(sub, f"{path} {name}")


COMMANDS = dict(_commands(typer.main.get_command(cli_app), "seawall"))


def _cli_sections() -> dict[str, str]:
    """docs/cli.md split at headings of the form  ## `seawall …`."""
    parts = re.split(r"^#+ `(seawall[^`]*)`\s*$", doc("cli.md"), flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def _param_names(param: Any) -> list[str]:
    if param.param_type_name == "argument":
        return [param.metavar or param.name.upper()]
    return [opt for opt in [*param.opts, *param.secondary_opts] if opt != "--help"]


@pytest.mark.parametrize("path", sorted(COMMANDS))
def test_every_command_and_option_is_documented(path: str) -> None:
    sections = _cli_sections()
    assert path in sections, f"docs/cli.md needs a section headed `{path}`"
    for param in COMMANDS[path].params:
        for name in _param_names(param):
            assert f"`{name}`" in sections[path], f"docs/cli.md, `{path}`: document {name}"


def test_documented_commands_exist() -> None:
    assert set(_cli_sections()) - set(COMMANDS) == set()


GROUPS = sorted(path for path, command in COMMANDS.items() if getattr(command, "commands", None))


@pytest.mark.parametrize("path", GROUPS)
def test_every_group_lists_its_commands(path: str) -> None:
    """A group's section says `Commands: ...` naming every command in it."""
    listed = re.search(r"Commands:([^.]*)\.", _cli_sections()[path])
    assert listed, f"docs/cli.md, `{path}`: say `Commands: ...`"
    names = set(re.findall(r"`([\w-]+)`", listed.group(1)))
    assert names == set(COMMANDS[path].commands), f"docs/cli.md, `{path}`: list its commands"


# -- HTTP routes --------------------------------------------------------------------------------


def _route_pairs(tmp_path: Path) -> set[str]:
    """ "METHOD path" for every route of the real app, `{name:path}` written as `{name}`."""
    app = create_app(Settings.model_validate({"data_dir": tmp_path}))
    pairs = set()
    for route in app.routes:
        if isinstance(route, Mount) and route.path == "/ui/static":
            pairs.add("GET /ui/static/{path}")  # the console's stylesheet and htmx
            continue
        assert isinstance(route, Route), f"document {route!r} and teach this test about it"
        path = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)
        pairs |= {f"{method} {path}" for method in route.methods or ()}
    return pairs


def test_every_route_is_documented(tmp_path: Path) -> None:
    text = doc("api.md")
    missing = sorted(pair for pair in _route_pairs(tmp_path) if f"`{pair}`" not in text)
    assert missing == [], f"docs/api.md does not document: {missing}"


def test_documented_routes_exist(tmp_path: Path) -> None:
    methods = "|".join(HTTP_METHODS)
    documented = {
        match.split("?", 1)[0]
        for match in re.findall(rf"`((?:{methods}) /[^`\s]*)`", doc("api.md"))
    }
    assert documented - _route_pairs(tmp_path) == set()


# -- metrics ------------------------------------------------------------------------------------


def test_every_metric_is_documented() -> None:
    body, _ = Metrics(None).render(uploads_open=0)
    text = doc("operations.md")
    for family in text_string_to_metric_families(body.decode()):
        if family.name.endswith("_created"):
            continue  # prometheus-client's companion of each counter, not a metric of ours
        names = [family.name]
        if family.type == "counter":
            names.append(f"{family.name}_total")  # the name Prometheus scrapes
        for name in names:
            assert f"`{name}`" in text, f"docs/operations.md does not document metric {name}"


# -- audit events -------------------------------------------------------------------------------


@pytest.mark.parametrize("action", [a.value for a in AuditAction])
def test_every_audit_event_is_documented(action: str) -> None:
    rows = table_rows(doc("audit.md"), action)
    assert len(rows) == 1, f"docs/audit.md needs one table row for audit event {action!r}"


def test_documented_audit_events_exist() -> None:
    documented = set(re.findall(r"^\| `([a-z_]+:[a-z_]+)` \|", doc("audit.md"), flags=re.MULTILINE))
    assert documented - {a.value for a in AuditAction} == set()


# -- the pages themselves -----------------------------------------------------------------------


def _anchor(heading: str) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_index_lists_every_page() -> None:
    index = doc("README.md")
    for page in sorted(DOCS.glob("*.md")):
        if page.name != "README.md":
            assert f"]({page.name})" in index, f"docs/README.md does not link {page.name}"


@pytest.mark.parametrize("page", sorted(p.name for p in DOCS.glob("*.md")))
def test_links_between_pages_resolve(page: str) -> None:
    for target, anchor in re.findall(r"\]\(([\w.-]*\.md)?(?:#([\w-]+))?\)", doc(page)):
        target = target or page
        assert (DOCS / target).is_file(), f"docs/{page} links to missing {target}"
        if anchor:
            headings = re.findall(r"^#+ (.+)$", doc(target), flags=re.MULTILINE)
            anchors = {_anchor(h) for h in headings}
            assert anchor in anchors, f"docs/{page} links to missing {target}#{anchor}"
