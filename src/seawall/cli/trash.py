"""`seawall trash list|purge`, `seawall tag delete` and `seawall tag restore`: deleting a tag
into the trash, the deleted tags that can still be brought back, bringing one back, and
dropping entries."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer

from seawall.cli.options import ConfigOption, DataDirOption, JsonOption
from seawall.cli.store import fail, nothing, tag_argument, with_lifecycle
from seawall.config import Settings

if TYPE_CHECKING:
    from seawall.domain.audit import Origin
    from seawall.wiring import Services

SHORT_DIGEST = 19
DigestOption = Annotated[
    str | None,
    typer.Option(metavar="DIGEST", help="The entry of the tag that pointed at this digest."),
]


def make(load: Callable[..., Settings]) -> typer.Typer:
    app = typer.Typer(no_args_is_help=True)

    @app.command("list")
    def list_entries(
        config: ConfigOption = None,
        data_dir: DataDirOption = None,
        namespace: Annotated[str | None, typer.Option(help="Only this namespace.")] = None,
        repository: Annotated[str | None, typer.Option(help="Only this repository.")] = None,
        as_json: JsonOption = False,
    ) -> None:
        """List the deleted tags, newest first: repository, tag, digest, when, by whom and why
        each was deleted, and until when it can be restored."""

        async def work(services: Services, _origin: Origin) -> list[dict[str, Any]]:
            return await services.trash.entries(namespace, repository)

        rows = with_lifecycle(load(config, data_dir=data_dir), work)
        if as_json:
            typer.echo(json.dumps(rows, indent=2))
            return
        if not rows:
            nothing("the trash is empty")
            return
        from rich.markup import escape
        from rich.table import Table

        from seawall.cli.output import console

        table = Table("repository", "tag")
        table.add_column("digest", no_wrap=True)
        for column in ("deleted at", "deleted by", "reason", "restorable until"):
            table.add_column(column)
        for row in rows:
            until = f"{row['expires_at']} (expired)" if row["expired"] else row["expires_at"]
            table.add_row(
                row["repository"],
                row["tag"],
                row["digest"][:SHORT_DIGEST],
                row["deleted_at"],
                escape(row["deleted_by"]),
                escape(row["reason"]),
                until,
            )
        console().print(table)

    @app.command("purge")
    def purge(
        config: ConfigOption = None,
        data_dir: DataDirOption = None,
        repository: Annotated[
            str | None, typer.Option(help="With --tag: the repository of the tag to drop.")
        ] = None,
        tag: Annotated[
            str | None, typer.Option(help="Drop this tag's entries now, before they expire.")
        ] = None,
        digest: DigestOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Remove the entries that expired now (the garbage collector does it too, each pass),
        or with --repository and --tag drop that tag's entries early (only the one of --digest,
        when given): they can no longer be restored, and what they kept may be collected.
        Audited as trash:purged."""
        if (repository is None) != (tag is None) or (digest is not None and tag is None):
            raise fail("--repository and --tag go together (and --digest with them)", 2)

        async def work(services: Services, origin: Origin) -> dict[str, Any]:
            return await services.trash.purge(origin, repository, tag, digest)

        result = with_lifecycle(load(config, data_dir=data_dir), work)
        if as_json:
            typer.echo(json.dumps(result))
        elif tag is None:
            typer.echo(f"removed {result['expired']} expired entries")
        else:
            typer.echo(f"dropped {result['dropped']} entries of {repository}:{tag}")

    return app


def register_restore(tag_app: typer.Typer, load: Callable[..., Settings]) -> None:
    """`seawall tag delete` and `seawall tag restore`, in the `tag` group."""

    @tag_app.command("delete")
    def delete(
        image: Annotated[str, typer.Argument(metavar="REPOSITORY:TAG", help="The tag to delete.")],
        config: ConfigOption = None,
        data_dir: DataDirOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Delete a tag, as `DELETE /v2/<name>/manifests/<tag>` does: the manifest stays, the
        tag goes to the trash, restorable with `seawall tag restore` until its entry expires.
        Refused for an immutable tag. Audited as tag:deleted."""
        repository, tag = tag_argument(image)

        async def work(services: Services, origin: Origin) -> dict[str, Any]:
            from seawall.domain.names import validate_repository, validate_tag

            validate_repository(repository)  # refused with status 2, as the API's 400
            validate_tag(tag)
            await services.manifests.delete(repository, tag, origin)
            kept = await services.trash.entries(repository=repository)
            entry = next(e for e in kept if e["tag"] == tag)  # newest first: this one
            return {
                "repository": repository,
                "tag": tag,
                "digest": entry["digest"],
                "restorable_until": entry["expires_at"],
            }

        result = with_lifecycle(load(config, data_dir=data_dir), work)
        if as_json:
            typer.echo(json.dumps(result))
            return
        typer.echo(
            f"deleted {repository}:{tag} (was {result['digest']}); restorable until"
            f" {result['restorable_until']}"
        )

    @tag_app.command("restore")
    def restore(
        image: Annotated[str, typer.Argument(metavar="REPOSITORY:TAG", help="The deleted tag.")],
        config: ConfigOption = None,
        data_dir: DataDirOption = None,
        digest: DigestOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Bring a deleted tag back from the trash, pointing at its digest again with its
        pusher, channel and deprecation: the newest entry of the tag, or the one of --digest.
        Refused when the tag exists now, when the entry expired, or when what the image needs
        is no longer stored."""
        repository, tag = tag_argument(image)

        async def work(services: Services, origin: Origin) -> dict[str, Any]:
            return await services.trash.restore(repository, tag, digest, origin)

        result = with_lifecycle(load(config, data_dir=data_dir), work)
        if as_json:
            typer.echo(json.dumps(result))
            return
        typer.echo(f"restored {repository}:{tag} -> {result['digest']}")
