"""Settings: the one place configuration is read, and the only reader of os.environ.

Sources, highest priority first: explicit values (CLI flags), `SEAWALL_*` environment variables,
the TOML file named by `SEAWALL_CONFIG` (default `./seawall.toml` when it exists), then defaults.
Every key of `Settings` maps mechanically to `SEAWALL_<KEY>` and to `<key>` in the TOML file.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

CONFIG_ENV = "SEAWALL_CONFIG"
DEFAULT_CONFIG_FILE = Path("seawall.toml")
# Unset `workers` means one per CPU up to this many: past it a node gains little on blob reads,
# and each worker adds its memory and up to `pg_pool_size` PostgreSQL connections.
DEFAULT_WORKERS_CAP = 4
# Set by `seawall serve` so that server worker processes see exactly the parent's settings.
_RESOLVED_ENV = "SEAWALL__RESOLVED_SETTINGS"
_PROMETHEUS_ENV = "PROMETHEUS_MULTIPROC_DIR"


class Settings(BaseSettings):
    """Seawall's configuration. Every field is documented in docs/configuration.md."""

    model_config = SettingsConfigDict(env_prefix="SEAWALL_", extra="forbid")

    host: str = Field("127.0.0.1", description="Address to listen on.")
    port: int = Field(5000, ge=1, le=65535, description="TCP port to listen on.")
    workers: int | None = Field(
        None,
        ge=1,
        le=256,
        description=(
            "Number of server worker processes. Unset: one per CPU this process may use, at"
            f" most {DEFAULT_WORKERS_CAP}."
        ),
    )
    data_dir: Path = Field(
        Path("seawall-data"), description="Directory for blobs, uploads and the SQLite database."
    )
    database_url: str = Field(
        "",
        description=(
            "SQLAlchemy-style database URL: `sqlite:///PATH` or `postgresql+asyncpg://USER@HOST/DB`."
            " Empty means SQLite at DATA_DIR/seawall.db."
        ),
    )
    node_name: str = Field(
        "",
        max_length=255,
        pattern=r"^([A-Za-z0-9][A-Za-z0-9._-]*)?$",
        description="This node's name, for its heartbeat and the SQLite single-node check."
        " Empty: the host name.",
    )
    tls_cert: Path | None = Field(None, description="PEM certificate file; enables HTTPS.")
    tls_key: Path | None = Field(None, description="PEM private key file for `tls_cert`.")
    storage_url: str = Field(
        "",
        max_length=1024,
        description="Where blob bytes live: `file://DIR`, or `s3://BUCKET/PREFIX` for an"
        " S3-compatible object store (AWS S3, MinIO, Ceph RGW, Garage). Empty: the data"
        " directory.",
    )
    s3_endpoint_url: str = Field(
        "",
        max_length=1024,
        description="The S3 API's address when it is not AWS, e.g. `http://minio:9000`.",
    )
    s3_region: str = Field("", max_length=64, description="The bucket's region (AWS).")
    s3_access_key_id: SecretStr | None = Field(
        None,
        description="S3 access key. Unset: where the AWS SDKs look (AWS_ACCESS_KEY_ID,"
        " ~/.aws/credentials, a web identity, a container or instance role).",
    )
    s3_secret_access_key: SecretStr | None = Field(
        None, description="S3 secret key, with `s3_access_key_id`."
    )
    s3_addressing_style: Literal["auto", "path", "virtual"] = Field(
        "auto",
        description="`path` (BUCKET in the path: MinIO, Ceph and most self-hosted stores) or"
        " `virtual` (BUCKET in the host name); `auto` chooses as the AWS SDKs do.",
    )
    s3_part_mib: int = Field(
        8,
        ge=5,
        le=512,
        description="Size of an upload's multipart parts (MiB; it grows every 1,000 parts).",
    )
    s3_redirect: bool = Field(
        False,
        description="Answer blob pulls with `307` to a presigned URL of the object, so bytes go"
        " from the store to the client (after the access decision). Clients must reach the"
        " store's address.",
    )
    s3_redirect_seconds: int = Field(
        300, ge=10, le=7 * 86_400, description="How long a presigned pull URL is valid."
    )
    upload_expiry_seconds: int = Field(
        3600,
        ge=1,
        description="An upload session nothing was written to for this long is removed, with"
        " its bytes: after a crash, a session whose process died looks like an idle client.",
    )
    upload_sweep_seconds: int = Field(
        300,
        ge=1,
        description="How often each server (and once at its start) removes expired upload"
        " sessions and upload files no session names.",
    )
    max_manifest_bytes: int = Field(
        4 * 1024 * 1024, ge=1024, description="Largest manifest accepted on push."
    )
    exception_max_days: int = Field(
        90,
        ge=1,
        le=3650,
        description="The furthest a pull-gate exception's expiry may be, in days from when it is"
        " added.",
    )
    exception_sweep_seconds: int = Field(
        60,
        ge=1,
        description="How often each server records exceptions that expired and judges their"
        " namespace's images again.",
    )
    promotion_sweep_seconds: int = Field(
        60,
        ge=1,
        description="How often each server expires pending promotions nobody approved in time"
        " and completes those whose gates now pass (a soak that ended).",
    )
    console_session_seconds: int = Field(
        8 * 3600,
        ge=60,
        le=30 * 86400,
        description="A web console sign-in lasts this long; the session then expires on the"
        " server, whatever the browser keeps. Signing out, or disabling the account, ends it"
        " at once.",
    )
    gc_grace_seconds: int = Field(
        3600,
        ge=0,
        description="Garbage collection removes nothing that lost its last reference (or was"
        " linked again) less than this long ago: time for a push in progress to reference the"
        " blobs it uploaded.",
    )
    gc_interval_seconds: int = Field(
        600,
        ge=0,
        description="How often a garbage-collection pass runs (one node at a time, under a"
        " lease); 0 turns scheduled passes off (`seawall gc` still runs one).",
    )
    gc_batch: int = Field(
        100,
        ge=1,
        le=10_000,
        description="Reviews a pass decides per transaction: smaller keeps pushes waiting"
        " less on SQLite, larger passes faster.",
    )
    retention_check_seconds: int = Field(
        300,
        ge=0,
        description="How often each server looks for namespaces whose scheduled retention"
        " (`[retention] schedule`) is due; one process applies each, under a lease. 0: this"
        " server applies none.",
    )
    inventory_check_seconds: float = Field(
        300.0,
        ge=0,
        description="How often each server looks whether the scheduled inventory report"
        " (`[inventory] schedule` in the site default policy) is due; one process writes it,"
        " under a lease. 0: this server writes none.",
    )
    max_upload_bytes: int = Field(
        64 * 1024**3, ge=0, description="Largest blob accepted on push (64 GiB); 0 means no limit."
    )
    pg_pool_size: int = Field(
        10, ge=1, description="PostgreSQL connections per server worker process."
    )
    admin_password: SecretStr | None = Field(
        None,
        description=(
            "Password of the first site admin, `admin`, created at the first start when there are"
            " no users. Unset: a random one is written to DATA_DIR/admin-password (mode 0600)."
        ),
    )
    token_service: str = Field(
        "seawall", min_length=1, description="The `service` of the token server and its tokens."
    )
    signing_key_passphrase: SecretStr | None = Field(
        None,
        min_length=32,
        description="Encrypts the private signing keys the database holds (tokens, receipts)."
        " Unset: they are stored unencrypted.",
    )
    token_ttl_seconds: int = Field(
        300, ge=60, le=3600, description="Lifetime of a bearer token issued by /token."
    )
    refresh_token_ttl_seconds: int = Field(
        7 * 86400, ge=300, description="Lifetime of a refresh token (OAuth2 offline access)."
    )
    public_url: str = Field(
        "",
        description=(
            "Base URL clients reach the registry at (for the token realm), e.g."
            " `https://registry.example.com`. Empty: taken from each request's Host."
        ),
    )
    personal_namespaces: bool = Field(
        False, description="A user may create the namespace named after them by pushing to it."
    )
    login_failure_window_seconds: int = Field(
        900, ge=1, description="Window in which failed logins are counted."
    )
    login_max_failures_per_account: int = Field(
        10, ge=1, description="Failed logins allowed per account in the window, then 429."
    )
    login_max_failures_per_address: int = Field(
        100, ge=1, description="Failed logins allowed per client address in the window, then 429."
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="Least severe log level written: debug, info, warning or error."
    )
    access_log: bool = Field(
        False, description="Have Granian write one access log line per request."
    )
    max_connections: int = Field(
        8192,
        ge=16,
        le=1_000_000,
        description=(
            "Connections one worker process holds open at once (Granian's backpressure); more"
            " wait in the listen backlog. Also bounded by the open-file limit."
        ),
    )
    listen_backlog: int = Field(
        4096, ge=16, le=65535, description="Connections the kernel queues before they are accepted."
    )
    header_timeout_seconds: float = Field(
        15.0,
        gt=0,
        le=300,
        description="Time a client has to send a request's headers (and an idle connection lives).",
    )
    shutdown_timeout_seconds: int = Field(
        30,
        ge=1,
        le=3600,
        description=(
            "After SIGTERM, how long a worker may take to finish its requests and shut down"
            " before it is killed."
        ),
    )
    trusted_proxies: list[str] = Field(
        [],
        max_length=256,
        description="Reverse proxies (addresses or CIDR networks) whose `X-Forwarded-For` is"
        " believed: a request from one of them is counted, limited and audited as coming from"
        " the address the proxies forwarded. Empty: every request is its peer's.",
    )
    body_timeout_seconds: float = Field(
        60.0,
        gt=0,
        le=3600,
        description="Longest pause between two chunks of a request body; then 408 and close.",
    )

    audit_pull_events: bool = Field(
        True, description="Record `manifest:pulled` events (batched off the request path)."
    )
    audit_flush_seconds: float = Field(
        1.0,
        ge=0.05,
        le=60,
        description=(
            "How often queued audit events (pulls) are written; a crash loses at most this"
            " interval of them."
        ),
    )
    audit_queue_limit: int = Field(
        100_000,
        ge=100,
        description="Queued pull events per process beyond which new ones are dropped (counted).",
    )
    audit_max_rows: int = Field(
        10_000_000,
        ge=0,
        description="Rows kept in the audit table; older ones are archived, then removed. 0: none.",
    )
    audit_max_age_days: int = Field(
        0, ge=0, description="Rows older than this are archived then removed. 0: no limit."
    )
    audit_archive_dir: Path | None = Field(
        None, description="Where audit archives are written. Unset: DATA_DIR/audit-archive."
    )
    audit_archive_check_seconds: int = Field(
        3600, ge=1, description="How often a server checks the audit limits above."
    )
    audit_syslog: str = Field(
        "",
        description=(
            "Forward every audit event to syslog (RFC 5424): `udp://HOST:PORT` or"
            " `tcp://HOST:PORT`. Empty: off."
        ),
    )
    audit_syslog_facility: int = Field(
        13, ge=0, le=23, description="Syslog facility of forwarded events (13: log audit)."
    )
    audit_webhook_url: str = Field(
        "", description="POST every audit event as JSON to this URL (retried). Empty: off."
    )
    audit_webhook_queue: int = Field(
        10_000,
        ge=1,
        description="Events waiting for the webhook beyond which new ones are dropped.",
    )
    audit_webhook_retries: int = Field(
        5, ge=0, description="Retries of a failed webhook delivery, with exponential backoff."
    )
    audit_webhook_timeout_seconds: float = Field(
        5.0, gt=0, description="Timeout of one webhook delivery."
    )

    scan_in_process: bool = Field(
        True,
        description=(
            "Run a scan worker inside each server process. Off: run `seawall worker` instead."
        ),
    )
    scan_concurrency: int = Field(
        1, ge=1, le=64, description="Images one worker process (or server process) scans at once."
    )
    scan_poll_seconds: float = Field(
        1.0, gt=0, le=300, description="How often an idle worker looks for queued scan jobs."
    )
    scan_lease_seconds: int = Field(
        300,
        ge=5,
        description=(
            "A running job's lease; a worker renews it while scanning, and a job whose worker"
            " died is taken up again once it lapses."
        ),
    )
    scan_max_attempts: int = Field(
        5, ge=1, le=100, description="Attempts at a failing scan job before it is marked failed."
    )
    scan_retry_seconds: float = Field(
        10.0, gt=0, description="Backoff before the first retry; it doubles with each attempt."
    )
    scan_max_layer_bytes: int = Field(
        8 * 1024**3, ge=1, description="Decompressed bytes one layer may hold before a scan stops."
    )
    scan_max_entries: int = Field(
        500_000, ge=1, description="Tar entries one layer may hold before a scan stops."
    )
    scan_max_file_bytes: int = Field(
        64 * 1024**2,
        ge=0,
        description="Largest file whose bytes analyzers read (larger ones are listed, not read).",
    )
    scan_secret_rules: Path | None = Field(
        None, description="TOML file of extra secret rules (docs/scanning-rules.md)."
    )
    scan_malware_hashes: list[Path] = Field(
        [],
        description="Malware hash lists: SHA-256 lines, or ClamAV `.hdb`/`.hsb` files.",
    )
    scan_yara_rules: list[Path] = Field([], description="YARA rule files malware scanning applies.")
    scan_sbom: bool = Field(
        True,
        description=(
            "Make a CycloneDX SBOM of each scanned image, stored with its report and served by"
            " the API; a namespace may also have it attached to the image as a referrer."
        ),
    )

    @field_validator("database_url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if value and not value.startswith(("sqlite:///", "postgresql+asyncpg://", "postgresql://")):
            raise ValueError(
                "database_url must start with sqlite:///, postgresql+asyncpg:// or postgresql://"
            )
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _proxy_networks(cls, value: list[str]) -> list[str]:
        from seawall.http.forwarded import networks

        networks(value)  # its ValueError names the bad entry
        return value

    @field_validator("storage_url")
    @classmethod
    def _known_storage(cls, value: str) -> str:
        if value.startswith("s3://"):
            from seawall.storage.s3 import parse_s3_url

            parse_s3_url(value)  # its ValueError says what is wrong
        elif value and not value.startswith("file://"):
            raise ValueError("storage_url must be file://DIR or s3://BUCKET[/PREFIX]")
        return value

    @property
    def uses_s3(self) -> bool:
        return self.storage_url.startswith("s3://")

    @property
    def blob_dir(self) -> Path:
        """Where the filesystem store keeps blobs (`file://DIR`, else the data directory)."""
        if self.storage_url.startswith("file://"):
            return Path(self.storage_url.removeprefix("file://"))
        return self.data_dir

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml_file = _chosen_config_file or config_file()
        if toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        return tuple(sources)

    # -- derived values -------------------------------------------------------------------

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir.resolve() / 'seawall.db'}"

    @property
    def effective_workers(self) -> int:
        return self.workers or min(usable_cpus(), DEFAULT_WORKERS_CAP)

    @property
    def effective_audit_archive_dir(self) -> Path:
        return (self.audit_archive_dir or self.data_dir / "audit-archive").resolve()

    @property
    def effective_node_name(self) -> str:
        return self.node_name or socket.gethostname()

    @property
    def is_postgres(self) -> bool:
        return self.effective_database_url.startswith("postgresql")


_chosen_config_file: Path | None = None
SECRETS = ("signing_key_passphrase", "s3_access_key_id", "s3_secret_access_key")


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity; a container's CPU quota is not read)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def aws_environment() -> dict[str, str]:
    """This process's AWS_* and proxy variables, which the S3 store reads where the AWS SDKs
    would (credentials, region, endpoint, CA bundle, proxies: storage/s3api/credentials.py)."""
    return {
        name: value
        for name, value in os.environ.items()
        if name.startswith("AWS_") or name.lower() in ("http_proxy", "https_proxy", "no_proxy")
    }


def config_file() -> Path | None:
    named = os.environ.get(CONFIG_ENV)
    if named:
        path = Path(named)
        if not path.is_file():
            raise FileNotFoundError(f"{CONFIG_ENV}={named}: no such file")
        return path
    return DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.is_file() else None


def load_settings(config: Path | None = None, **overrides: Any) -> Settings:
    """Settings from every source; `overrides` (CLI flags) win and None values are ignored.
    `config` names the TOML file instead of SEAWALL_CONFIG / ./seawall.toml."""
    global _chosen_config_file
    if config is not None and not config.is_file():
        raise FileNotFoundError(f"{config}: no such configuration file")
    _chosen_config_file = config
    try:
        given = {k: v for k, v in overrides.items() if v is not None}
        return Settings(**given)
    finally:
        _chosen_config_file = None


def dump_for_children(settings: Settings, exclude: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The settings as JSON-ready values for a process of Seawall's own to run with (a server
    worker, a garbage-collection child): the secrets of `SECRETS` in clear, since a child signs
    its S3 requests with them and they dump masked otherwise. Handed over in the environment or
    on standard input, never on a command line, which every local user can read."""
    resolved = settings.model_dump(mode="json", exclude=set(exclude))
    for name in SECRETS:
        secret: SecretStr | None = getattr(settings, name)
        if secret is not None and name not in exclude:
            resolved[name] = secret.get_secret_value()
    return resolved


def export_for_workers(settings: Settings) -> None:
    """Hand the resolved settings to server worker processes (they inherit the environment)."""
    os.environ[_RESOLVED_ENV] = json.dumps(dump_for_children(settings))
    os.environ[_PROMETHEUS_ENV] = str(metrics_dir(settings))
    # glibc gives each thread that allocates its own malloc arena (up to 8 per CPU): the threads
    # that move blob bytes (S3 client calls, hashing) each kept tens of MB of freed chunks there
    # (2 GiB pushed and pulled through S3: peak RSS 240 MiB, 207 with 2 arenas). Read by the
    # C library when the server process starts (it is exec'd after this); an operator's own
    # value wins.
    os.environ.setdefault("MALLOC_ARENA_MAX", "2")


def metrics_dir(settings: Settings) -> Path:
    """Where this node's server workers keep their metrics files: per node, since nodes may
    share `data_dir` and each `seawall serve` empties its own at start."""
    return settings.data_dir.resolve() / "tmp" / "metrics" / settings.effective_node_name


def settings_for_worker() -> Settings:
    """In a server worker: the settings `export_for_workers` handed down, else load afresh."""
    resolved = os.environ.get(_RESOLVED_ENV)
    if resolved:
        return Settings.model_validate_json(resolved)
    return load_settings()


def metrics_multiprocess_dir() -> Path | None:
    value = os.environ.get(_PROMETHEUS_ENV)
    return Path(value) if value else None
