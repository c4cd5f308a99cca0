"""Seawall only: the token endpoint's issue rate."""

from __future__ import annotations

from bench import auth
from bench.loadgen import run_hload, valid
from bench.options import Context
from bench.phases_meta import IMAGE_REPO
from bench.servers import Server

Result = dict[str, object]


def token_rate(ctx: Context, server: Server) -> Result:
    """``--token-clients`` clients at once (16), each over its own keep-alive connection,
    ``GET /token?service=seawall&scope=repository:bench/image:pull`` with the admin's Basic
    credentials, for the duration of the req/s tests, through hload after a warm-up.  Each
    server process checks a password once with argon2 and then remembers it for 60 s:
    ``auth.fresh_basic`` makes every process remember a new one beforehand, so the figure is
    that steady state.  Every answer must be a 200; one is checked to hold a token first."""
    opts = ctx.opts
    auth.fresh_basic(server)
    scopes = [auth.pull(IMAGE_REPO)]
    auth.fetch_token(server, scopes)
    url = auth.token_url(server, scopes)
    clients = opts.token_clients
    with server.monitor.phase("token-issue"):
        load = run_hload(
            ctx.hload, url, "GET", auth.basic(server), clients, opts.duration, opts.warmup
        )
    valid(load, "GET /token")
    return {"tokens_per_s": load.rps, "clients": clients, "scopes": scopes, **load.to_json()}
