"""Configuration: one typed value, read from the environment once, never at import time.

``REDIS_URL`` is shared with the rest of the app; every other knob is ``SCALR_QUEUE_*``.
An invalid value raises :class:`ConfigurationError` whose single line names the variable
and what it accepts, so the process can exit with that line instead of a traceback.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import AliasChoices, BeforeValidator, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ._durations import DURATION_HELP, parse_duration
from ._errors import ConfigurationError
from .redis._keys import DEFAULT_QUEUE, use_tagged_keys
from .redis._url import is_cluster_url, is_sentinel_url, parse_cluster_url, parse_sentinel_url

Duration = Annotated[float, BeforeValidator(parse_duration)]

_SIZE = re.compile(r"^\s*([0-9]+)\s*(b|kb|kib|mb|mib|gb|gib)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"b": 1, "kb": 1000, "kib": 1024, "mb": 10**6, "mib": 2**20, "gb": 10**9, "gib": 2**30}
SIZE_HELP = "a size in bytes (1048576) or with a unit (512KiB, 1MiB, 1MB)"
# a name may end in "~<shard>": the shards of one logical queue split with SCALR_QUEUE_SHARDS
QUEUE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}(~[1-9][0-9]{0,2})?$")
QUEUE_NAME_HELP = "1-64 characters: letters, digits, '_', '.', '-' (starting with a letter or digit)"


def _parse_size(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    if isinstance(value, str) and (m := _SIZE.match(value)) and int(m.group(1)) > 0:
        return int(m.group(1)) * _SIZE_UNITS[(m.group(2) or "b").lower()]
    raise ValueError(f"expected {SIZE_HELP}")


Size = Annotated[int, BeforeValidator(_parse_size)]


def mask_url(url: str) -> str:
    """Return ``url`` with its password replaced by ``***`` (safe for banners, logs, errors)."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        user = parts.username or ""
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    except ValueError:
        return re.sub(r"//([^:/@]*):[^@]*@", r"//\1:***@", url)


def check_redis_url(url: str) -> str:
    """Validate the URL early (scheme, port, db) so a typo fails at start-up with one line.

    It also picks the process's key layout (``redis._keys.use_tagged_keys``): tagged names for a
    ``redis+cluster://`` URL, arq's names otherwise, before any code builds a key from these settings.
    """
    use_tagged_keys(is_cluster_url(url))
    if is_sentinel_url(url):
        parse_sentinel_url(url)  # its ValueError is already one line naming what is wrong
        return url
    if is_cluster_url(url):
        parse_cluster_url(url)
        return url
    if url.startswith("memory:"):
        return _check_memory_url(url)
    try:
        parts = urlsplit(url)
        if parts.scheme not in {"redis", "rediss", "unix"}:
            raise ValueError(
                "scheme must be redis://, rediss:// or unix:// (or redis+sentinel://, rediss+sentinel://, "
                "redis+cluster://, rediss+cluster://; "
                "memory:// for the in-process store), "
                f"not {parts.scheme or 'none'!r}"
            )
        if parts.scheme != "unix":
            if not parts.hostname:
                raise ValueError("it has no host (expected redis://[user:password@]host[:port][/db])")
            _ = parts.port  # raises ValueError for a non-numeric or out-of-range port
            db = parts.path.lstrip("/")
            if db and not db.isdigit():
                raise ValueError(f"the database must be a number, not {db!r}")
    except ValueError as exc:
        msg = str(exc)
        if "Port" in msg or ("port" in msg and "could not" in msg):
            msg = "the port must be a number from 1 to 65535"
        raise ValueError(msg) from None
    return url


MAX_SHARDS = 256


def shard_counts(value: str) -> dict[str, int]:
    """``"bulk=4,mail=2"`` -> ``{"bulk": 4, "mail": 2}``; a ValueError names the bad part."""
    shards: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in value.split(","))):
        name, sep, count = part.partition("=")
        name = name.strip()
        if not sep or not QUEUE_NAME_RE.match(name) or "~" in name:
            raise ValueError(f"{part!r} is not <queue>=<shards> (expected e.g. bulk=4,mail=2)")
        if not count.strip().isdigit() or not 1 <= int(count) <= MAX_SHARDS:
            raise ValueError(f"{part!r}: the shard count must be a number from 1 to {MAX_SHARDS}")
        shards[name] = int(count)
    return shards


def check_shards(value: Any) -> Any:
    if isinstance(value, str):
        shard_counts(value)
    return value


def parse_processes(value: Any) -> Any:
    """``auto``, or a whole number from 1 to 256 (from a flag or an env file, so text is normal)."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValueError("expected a number of processes from 1 to 256, or auto") from None
    if not 1 <= number <= 256:
        raise ValueError("expected a number of processes from 1 to 256, or auto")
    return number


def _check_memory_url(url: str) -> str:
    """``memory://`` exactly: the in-process store (see docs/in-process.md), usable only with its extra."""
    from .redis._memory import MEMORY_URL, missing_extra

    if url != MEMORY_URL:
        raise ValueError(f"the in-process store is {MEMORY_URL} exactly, with nothing after it")
    problem = missing_extra()
    if problem is not None:
        raise ValueError(problem)
    return url


class Settings(BaseSettings):
    """Every setting, with its default. Build it with :func:`get_settings` (cached per process)."""

    # populate_by_name: Settings(redis_url=...) as well as Settings(REDIS_URL=...); without it, pydantic-settings
    # 2.2 (the lowest allowed) drops the field name without a word (extra="ignore") and uses the default URL
    model_config = SettingsConfigDict(
        env_prefix="SCALR_QUEUE_", extra="ignore", frozen=True, validate_default=True, populate_by_name=True
    )

    redis_url: str = Field(
        "redis://localhost:6379/0",
        validation_alias=AliasChoices("REDIS_URL", "SCALR_QUEUE_REDIS_URL"),
        description="`redis://[user:password@]host[:port][/db]`, `rediss://` for TLS, `unix://`, Sentinel: "
        "`redis+sentinel://[user:password@]host:port,host:port/service[/db]` (`rediss+sentinel://`), or "
        "`memory://` (in-process, for unit tests and demos); the password is never printed",
    )
    queue_name: str = Field(DEFAULT_QUEUE, description="queue a worker serves and enqueue uses (`arq:queue:<name>`)")
    concurrency: int = Field(10, ge=1, le=10_000, description="jobs one worker process runs at once")
    processes: Annotated[int | Literal["auto"], BeforeValidator(parse_processes)] = Field(
        1,
        description="worker processes one `python -m scalr_queue.worker` keeps running (`auto`: the cores the "
        "container may use)",
    )
    shards: Annotated[str, BeforeValidator(check_shards)] = Field(
        "",
        description="hot queues split over N shards, `bulk=4,mail=2`: enqueue spreads each job by a hash of its "
        "id over `bulk`, `bulk~1` ... `bulk~3` (on Redis Cluster: N slots), a worker of `bulk` serves all N",
    )
    job_timeout: Duration = Field(300.0, description="per-attempt timeout; the attempt is cancelled and retried")
    max_tries: int = Field(5, ge=1, le=1000, description="attempts per job, the first included; then the failed set")
    retry_delay: Duration = Field(1.0, description="first backoff delay; doubles each try")
    retry_max_delay: Duration = Field(60.0, description="cap on the backoff delay")
    retry_jitter: float = Field(0.1, ge=0.0, le=1.0, description="random spread on each delay, a fraction (0 to 1)")
    keep_result: Duration = Field(
        3600.0, description="how long results (and failure results) stay readable; `0` keeps none"
    )
    shutdown_grace: Duration = Field(
        30.0, description="on SIGTERM, how long running jobs may finish before they are requeued"
    )
    lease: Duration = Field(
        30.0, description="lease on a running job, renewed while it runs: a dead worker's jobs rerun after this long"
    )
    poll_interval: Duration = Field(1.0, description="safety-net poll of an idle worker (enqueues wake it at once)")
    health_interval: Duration = Field(
        10.0, description="how often a worker reports itself (worker registry, `--check`, `/healthz`)"
    )
    failed_max: int = Field(
        10_000, ge=1, le=10_000_000, description="failed-set cap per queue; the oldest are dropped with a warning"
    )
    finished_max: int = Field(
        10_000,
        ge=1,
        le=10_000_000,
        description="recently finished jobs listed per queue and end state (`scalr-queue jobs`); within keep_result",
    )
    unknown_task_delay: Duration = Field(
        10.0, description="a job whose task this worker lacks (rolling deploy) is put back this long, not a try"
    )
    unknown_task_max_age: Duration = Field(
        3600.0, description="...until the job is this old; then it goes to the failed set"
    )
    max_payload: Size = Field(
        1024 * 1024,
        description="largest encoded job enqueue accepts: bytes or `512KiB`, `1MiB`, `1MB`",
        json_schema_extra={"shown_default": "1MiB"},
    )
    tasks: str | None = Field(
        None,
        description="worker module whose `tasks` enqueue checks names and arguments against (`src.worker`); "
        "unset, enqueue checks against live workers' published tasks",
    )
    memory_worker: str | None = Field(
        None,
        description="with `REDIS_URL=memory://`: the worker module (`src.worker`) run inside this process, "
        "started at its first queue call; unset: jobs wait for `scalr_queue.testing.run_in_process`",
    )
    redis_timeout: Duration = Field(
        2.0, description="connect and command timeout for producers: how fast enqueue fails when Redis is down"
    )
    min_replicas: int = Field(
        0,
        ge=0,
        le=100,
        description="replicas that must have each enqueued job before enqueue returns (Redis `WAIT`); "
        "`0`: no wait. Set it with Sentinel; docs/sentinel.md says what a failover can still lose",
    )
    min_replicas_timeout: Duration = Field(
        1.0, description="how long enqueue waits for `SCALR_QUEUE_MIN_REPLICAS` replicas before it fails"
    )
    tls_cert_reqs: Literal["required", "optional", "none"] = Field(
        "required", description="certificate verification for `rediss://`: `required`, `optional`, `none`"
    )
    tls_ca_certs: str | None = Field(None, description="CA bundle file for `rediss://`")
    tls_check_hostname: bool = Field(False, description="also match the certificate's host name")
    event_loop: Literal["auto", "uvloop", "asyncio"] = Field(
        "auto",
        description="the worker's event loop: `auto` (uvloop when installed, as it is except on Windows), `uvloop`, or "
        "`asyncio` (the standard library's, for a task library that needs it)",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="worker log level: `DEBUG`, `INFO`, `WARNING`, `ERROR`"
    )
    log_format: Literal["plain", "json"] = Field(
        "plain",
        description=(
            "worker log format: `plain`, or `json` (one object per line); the worker sets up its own logging,"
            " and its records skip thread, process and source-line lookups, which neither format prints"
        ),
    )
    metrics_port: int | None = Field(
        None, ge=1, le=65535, description="serve Prometheus metrics from the worker on this port; unset: off"
    )
    metrics_host: str = Field("127.0.0.1", description="address the metrics port binds (loopback unless you open it)")
    health_port: int | None = Field(
        None,
        ge=1,
        le=65535,
        description="serve the worker's `/healthz` (200 healthy, 503 with the reason) on this port; unset: off",
    )
    health_host: str = Field(
        "127.0.0.1",
        description="address the health port binds (loopback; `0.0.0.0` in a container probed from outside)",
    )
    health_max_lag: Duration = Field(
        5.0,
        description="`/healthz` answers 503 once the worker's event loop has not run for this long (a blocked loop)",
    )

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        return check_redis_url(value)

    @field_validator("queue_name")
    @classmethod
    def _queue_name(cls, value: str) -> str:
        if not QUEUE_NAME_RE.match(value):
            raise ValueError(f"expected {QUEUE_NAME_HELP}")
        return value

    @field_validator(
        "job_timeout",
        "retry_delay",
        "lease",
        "poll_interval",
        "health_interval",
        "redis_timeout",
        "health_max_lag",
        "min_replicas_timeout",
    )
    @classmethod
    def _positive(cls, value: float) -> float:
        if value <= 0:
            raise ValueError(f"expected {DURATION_HELP}, greater than zero")
        if value > 7 * 86400:
            raise ValueError(f"expected {DURATION_HELP}, at most 7 days")
        return value

    @field_validator("tasks", "memory_worker")
    @classmethod
    def _tasks(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^[A-Za-z_][\w.]*(:[A-Za-z_]\w*)?$", value):
            raise ValueError("expected a module path such as src.worker (optionally src.worker:tasks)")
        return value or None

    def shard_count(self, queue: str) -> int:
        """How many shards ``SCALR_QUEUE_SHARDS`` gives ``queue`` (1: not split)."""
        return shard_counts(self.shards).get(queue, 1) if self.shards else 1

    @property
    def safe_redis_url(self) -> str:
        return mask_url(self.redis_url)

    def describe(self) -> str:
        """One line of the settings in force, password masked (for the worker banner)."""
        fields = (
            "queue_name",
            "concurrency",
            "job_timeout",
            "max_tries",
            "retry_delay",
            "retry_max_delay",
            "keep_result",
            "shutdown_grace",
            "lease",
            "poll_interval",
        )
        return f"redis_url={self.safe_redis_url} " + " ".join(f"{f}={getattr(self, f)}" for f in fields)


def _env_name(loc: tuple[Any, ...]) -> str:
    field = str(loc[0]) if loc else "?"
    if field in ("redis_url", "REDIS_URL", "SCALR_QUEUE_REDIS_URL"):
        return "REDIS_URL"
    return "SCALR_QUEUE_" + field.upper()


def format_validation_error(exc: ValidationError) -> str:
    """Turn pydantic's multi-line report into one line per problem, never echoing a password."""
    lines = []
    for err in exc.errors():
        name = _env_name(err["loc"])
        raw = err.get("input")
        shown = mask_url(raw) if name == "REDIS_URL" and isinstance(raw, str) else raw
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "literal_error":
            msg = msg.replace("Input should be", "expected")
        elif err["type"] in ("int_parsing", "int_type"):
            msg = "expected a whole number"
        elif err["type"] in ("greater_than_equal", "less_than_equal"):
            msg = msg.replace("Input should be", "expected a number")
        lines.append(f"invalid setting {name}={shown!r}: {msg}")
    return "; ".join(lines)


def load_settings(**overrides: Any) -> Settings:
    """Build settings from the environment (plus overrides); raise ConfigurationError on bad input."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigurationError(format_validation_error(exc)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once. Tests call ``get_settings.cache_clear()`` after env changes."""
    return load_settings()
