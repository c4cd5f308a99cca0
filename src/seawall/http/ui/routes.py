"""The console's URL table, under /ui/ (and `/`, which sends browsers there). Every page but
sign-in goes through `Console.page`: a live session, the same access checks as the API."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from seawall.http.auth import Gate
from seawall.http.ui.console import Console
from seawall.http.ui.repositories import RepositoryListPage
from seawall.http.ui.signin import SignInPages

if TYPE_CHECKING:
    from seawall.wiring import Services


def console_routes(gate: Gate, services: Services) -> list[BaseRoute]:
    console = Console(gate, services.console_sessions, public_url=services.settings.public_url)
    sign_in = SignInPages(console)
    repositories = RepositoryListPage(console, services.browse)
    page = console.page
    return [
        Route("/", sign_in.root, methods=["GET"]),
        Route("/ui", sign_in.show, methods=["GET"]),
        Route("/ui/sign-in", sign_in.show, methods=["GET"]),
        Route("/ui/sign-in", sign_in.sign_in, methods=["POST"]),
        Route("/ui/sign-out", page(sign_in.sign_out), methods=["POST"]),
        Route("/ui/", page(repositories.show), methods=["GET"]),
        Mount("/ui/static", StaticFiles(packages=[("seawall.http.ui", "static")]), name="static"),
    ]
