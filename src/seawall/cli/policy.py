"""`seawall policy show|set|history`: a namespace's lifecycle policy document (or the site-wide
default), what it would do before it is saved (`--dry-run`), and its revisions.

"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from seawall.cli.options import ConfigOption, DataDirOption, JsonOption
from seawall.cli.store import fail, nothing, with_lifecycle
from seawall.config import Settings

if TYPE_CHECKING:
    from seawall.domain.audit import Origin
    from seawall.wiring import Services

T = TypeVar("T")

NamespaceArgument = Annotated[
    str | None,
    typer.Argument(
        metavar="NS", help="The namespace whose policy this is (or --site).", show_default=False
    ),
]
SiteOption = Annotated[
    bool, typer.Option("--site", help="The site-wide default policy instead of a namespace's.")
]


def _scope(namespace: str | None, site: bool) -> str | None:
    """The namespace named, or None for `--site`; exactly one of the two."""
    if site == (namespace is not None):
        raise fail("name a namespace, or --site for the site-wide default (exactly one)", 2)
    return namespace


def _label(namespace: str | None) -> str:
    return "the site default policy" if namespace is None else f"the policy of {namespace}"


def read_document(path: Path) -> str:
    """The text of a policy document file (`-`: standard input): UTF-8, within the size a
    document may have; otherwise the command ends with status 2, saying why."""
    from seawall.domain.policy import MAX_DOCUMENT_BYTES

    stdin = str(path) == "-"
    name = "standard input" if stdin else str(path)
    try:
        if stdin:
            data = typer.get_binary_stream("stdin").read(MAX_DOCUMENT_BYTES + 1)
        else:
            with path.open("rb") as file:
                data = file.read(MAX_DOCUMENT_BYTES + 1)
    except OSError as exc:
        raise fail(f"cannot read {name}: {exc.strerror or exc}", 2) from None
    if len(data) > MAX_DOCUMENT_BYTES:
        raise fail(
            f"{name}: larger than {MAX_DOCUMENT_BYTES // 1024} KiB, the most a policy"
            " document may be",
            2,
        )
    try:
        return data.decode("utf-8-sig")  # an editor's byte-order mark is not part of the text
    except UnicodeDecodeError as exc:
        raise fail(f"{name} is not UTF-8 text (invalid byte at offset {exc.start})", 2) from None


def value_text(value: Any) -> str:
    """A policy value as the document writes it: `"high"`, `true`, `["v*"]`."""
    return json.dumps(value, ensure_ascii=False)


def make(load: Callable[..., Settings]) -> typer.Typer:
    app = typer.Typer(no_args_is_help=True)

    @app.command("show")
    def show(
        namespace: NamespaceArgument = None,
        site: SiteOption = False,
        config: ConfigOption = None,
        data_dir: DataDirOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Print the stored policy document and every effective key with where its value comes
        from (the namespace's document, the site default, or the built-in default)."""
        scope = _scope(namespace, site)

        async def work(services: Services, _origin: Origin) -> dict[str, Any]:
            return await services.policies.show(scope)

        view = with_lifecycle(load(config, data_dir=data_dir), work)
        if as_json:
            typer.echo(json.dumps(view, indent=2))
            return
        _print_show(scope, view)

    @app.command("set")
    def set_policy(
        file: Annotated[
            Path,
            typer.Option(
                "--file", "-f", help="The policy document (TOML); - reads standard input."
            ),
        ],
        namespace: NamespaceArgument = None,
        site: SiteOption = False,
        config: ConfigOption = None,
        data_dir: DataDirOption = None,
        dry_run: Annotated[
            bool,
            typer.Option("--dry-run", help="Save nothing: report what the document would do, now."),
        ] = False,
        as_json: JsonOption = False,
    ) -> None:
        """Check a policy document and save it as the next revision, printing the diff; with
        --dry-run, say instead which tags would become (or stop being) immutable, which images
        would be refused and how many of their pulls in the last 7 days."""
        scope = _scope(namespace, site)
        text = read_document(file)

        async def work(services: Services, origin: Origin) -> dict[str, Any]:
            return await services.policies.set(scope, text, origin, dry_run=dry_run)

        result = with_lifecycle(load(config, data_dir=data_dir), work)
        if as_json:
            typer.echo(json.dumps(result, indent=2))
        elif dry_run:
            _print_what_if(scope, result)
        else:
            typer.echo(f"{_label(scope)}: revision {result['revision']} saved")
            _block(result["diff"], "(the same text as the revision before)")

    @app.command("history")
    def history(
        namespace: NamespaceArgument = None,
        site: SiteOption = False,
        config: ConfigOption = None,
        data_dir: DataDirOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Print every revision of the policy, newest first: who saved it, when, and its diff
        from the revision before."""
        scope = _scope(namespace, site)

        async def work(services: Services, _origin: Origin) -> list[dict[str, Any]]:
            return await services.policies.history(scope)

        revisions = with_lifecycle(load(config, data_dir=data_dir), work)
        if as_json:
            for revision in revisions:
                typer.echo(json.dumps(revision))
            return
        if not revisions:
            nothing(f"{_label(scope)} has no revisions")
            return
        for index, revision in enumerate(revisions):
            if index:
                typer.echo()
            typer.echo(f"revision {revision['revision']}  {revision['at']}  by {revision['actor']}")
            _block(revision["diff"], "(the same text as the revision before)")

    return app


def _block(text: str, empty: str) -> None:
    """Print a document or a diff as lines (its last one too, though the text may not end
    with a newline), or `empty` when there is no text."""
    typer.echo(text.rstrip("\n") if text else empty)


def _print_show(namespace: str | None, view: dict[str, Any]) -> None:
    from rich.markup import escape
    from rich.table import Table

    from seawall.cli.output import console

    if view["revision"]:
        typer.echo(
            f"{_label(namespace)}: revision {view['revision']}, saved {view['updated_at']}"
            f" by {view['updated_by']}"
        )
        _block(view["document"], "(an empty document)")
    else:
        typer.echo(f"{_label(namespace)}: no document saved")
    table = Table("key", "value", "from", title="effective policy")
    for key, entry in view["effective"].items():
        table.add_row(key, escape(value_text(entry["value"])), escape(entry["from"]))
    console().print(table)


def _print_what_if(namespace: str | None, report: dict[str, Any]) -> None:
    """The what-if report of `policy set --dry-run`, for a person to read."""
    typer.echo(f"dry run for {_label(namespace)}: nothing saved")
    _block(report["diff"], "(the same text as the revision in force)")
    added = report["immutable"]["added"]
    removed = report["immutable"]["removed"]
    blocked = report["blocked"]
    typer.echo(f"what it would do now, over {report['images']} image(s):")
    typer.echo(f"  tags that would become immutable: {len(added)}")
    for row in added:
        typer.echo(f'    {row["repository"]}:{row["tag"]}  (rule "{row["rule"]}")')
    typer.echo(f"  tags that would stop being immutable: {len(removed)}")
    for row in removed:
        typer.echo(f'    {row["repository"]}:{row["tag"]}  (was rule "{row["rule"]}")')
    typer.echo(f"  images whose pulls it would refuse: {len(blocked)}")
    for row in blocked:
        tags = f"  (tags {', '.join(row['tags'])})" if row["tags"] else ""
        typer.echo(f"    {row['repository']}@{row['digest']}{tags}")
        typer.echo(f"      rule: {row['rule']}")
        typer.echo(f"      message: {row['message']}")
        typer.echo(f"      pulls in the last 7 days: {row['pulls_7d']}")
    typer.echo(f"  recorded pulls of the last 7 days it would refuse: {report['refused_pulls_7d']}")
