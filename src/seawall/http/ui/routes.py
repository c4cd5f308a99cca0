"""The console's URL table, under /ui/ (and `/`, which sends browsers there). Every page but
sign-in goes through `Console.page`: a live session, the same access checks as the API."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from seawall.http.auth import Gate
from seawall.http.ui.access import AccessPages
from seawall.http.ui.audit import AuditPages
from seawall.http.ui.console import Console
from seawall.http.ui.image import ImagePage
from seawall.http.ui.inventory import InventoryPages
from seawall.http.ui.policy import PolicyPages
from seawall.http.ui.promotions import PromotionPages
from seawall.http.ui.repositories import RepositoryListPage
from seawall.http.ui.repository import RepositoryPage
from seawall.http.ui.signin import SignInPages

if TYPE_CHECKING:
    from seawall.wiring import Services


def console_routes(gate: Gate, services: Services) -> list[BaseRoute]:
    console = Console(gate, services.console_sessions, public_url=services.settings.public_url)
    sign_in = SignInPages(console)
    repositories = RepositoryListPage(console, services.browse)
    repository = RepositoryPage(console, services.repository_pages, services.ownership)
    image = ImagePage(console, services.image_pages, services.reports)
    inventory = InventoryPages(console, services.access, services.inventory)
    audit = AuditPages(console, services.audit_reader, services.archiver().verify_table)
    access = AccessPages(console, services.console_access, services.identity)
    policy = PolicyPages(console, services.policies, services.policy_index)
    promotions = PromotionPages(console, services.promotion_board, services.promotion)
    page = console.page
    return [
        Route("/", sign_in.root, methods=["GET"]),
        Route("/ui", sign_in.show, methods=["GET"]),
        Route("/ui/sign-in", sign_in.show, methods=["GET"]),
        Route("/ui/sign-in", sign_in.sign_in, methods=["POST"]),
        Route("/ui/sign-out", page(sign_in.sign_out), methods=["POST"]),
        Route("/ui/", page(repositories.show), methods=["GET"]),
        # Repository names hold '/': the POST ends with /about, the image pages have their own
        # prefixes (the digest is a query parameter).
        Route("/ui/repositories/{name:path}/about", page(repository.describe), methods=["POST"]),
        Route("/ui/repositories/{name:path}", page(repository.show), methods=["GET"]),
        Route("/ui/images/{name:path}", page(image.show), methods=["GET"]),
        Route("/ui/sbom/{name:path}", page(image.sbom), methods=["GET"]),
        Route("/ui/inventory", page(inventory.show), methods=["GET"]),
        Route("/ui/inventory.csv", page(inventory.csv), methods=["GET"]),
        Route("/ui/audit", page(audit.show), methods=["GET"]),
        Route("/ui/audit/verify", page(audit.verify), methods=["POST"]),
        Route("/ui/audit/verify", page(audit.back), methods=["GET"]),
        Route("/ui/access", page(access.show), methods=["GET"]),
        Route("/ui/access/explain", page(access.explain), methods=["GET"]),
        Route("/ui/access/namespaces/{namespace}", page(access.namespace), methods=["GET"]),
        Route("/ui/access/users/{user}", page(access.set_disabled), methods=["POST"]),
        Route("/ui/policy", page(policy.chooser), methods=["GET"]),
        Route("/ui/policy/{namespace}", page(policy.show), methods=["GET"]),
        Route("/ui/policy/{namespace}", page(policy.save), methods=["POST"]),
        Route("/ui/policy/{namespace}/preview", page(policy.preview), methods=["POST"]),
        Route("/ui/promotions", page(promotions.show), methods=["GET"]),
        Route("/ui/promotions/{promotion}", page(promotions.detail), methods=["GET"]),
        Route("/ui/promotions/{promotion}/approve", page(promotions.approve), methods=["POST"]),
        Route("/ui/promotions/{promotion}/reject", page(promotions.reject), methods=["POST"]),
        Mount("/ui/static", StaticFiles(packages=[("seawall.http.ui", "static")]), name="static"),
    ]
