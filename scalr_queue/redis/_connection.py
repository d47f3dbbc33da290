"""Redis connections: one pool per process and event loop, and Redis errors in our words."""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar, cast

import hiredis
from arq.connections import ArqRedis
from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, ClusterPipeline, RedisCluster
from redis.asyncio.connection import AbstractConnection, ConnectionPool
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import MasterNotFoundError, Sentinel
from redis.backoff import NoBackoff
from redis.exceptions import (
    AuthenticationError,
    AuthorizationError,
    NoPermissionError,
    NoScriptError,
    OutOfMemoryError,
    RedisError,
    ResponseError,
)
from redis.exceptions import (
    ConnectionError as RedisConnectionError,
)
from redis.exceptions import (
    TimeoutError as RedisTimeoutError,
)

from .._deadline import Deadline
from .._errors import QueueUnavailableError
from .._settings import Settings
from . import _scripts
from ._cluster_pubsub import NodePubSub
from ._keys import key_tag, tagged_keys, use_tagged_keys
from ._memory import create_memory_redis, is_memory_url
from ._url import is_cluster_url, is_sentinel_url, parse_cluster_url, parse_sentinel_url

if TYPE_CHECKING:
    from arq.jobs import Job as ArqJob

    from .._protocols import Enqueuer

T = TypeVar("T")
C = TypeVar("C", bound=AbstractConnection)


def aw(value: Awaitable[T] | T) -> Awaitable[T]:
    """redis-py types each command as sync-or-async; on an asyncio client it is always awaitable."""
    return cast(Awaitable[T], value)


async def eval_script(redis: Any, script: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
    """EVALSHA, loading the script once if Redis does not have it (first use, or after a restart).

    On a cluster the per-job key names a script builds get the queue's hash tag of its first key
    (``_scripts.for_tag``), so the script text, and its SHA, is one per queue.
    """
    if tagged_keys() and keys:
        script = _scripts.for_tag(script, key_tag(keys[0]))
    sha = _scripts.sha(script)
    try:
        return await redis.execute_command("EVALSHA", sha, len(keys), *keys, *args)
    except NoScriptError:
        if tagged_keys():  # EVAL goes to the master of the keys' slot, and leaves the script cached there
            return await redis.execute_command("EVAL", script, len(keys), *keys, *args)
        await redis.execute_command("SCRIPT", "LOAD", script)
        return await redis.execute_command("EVALSHA", sha, len(keys), *keys, *args)


@functools.cache
def _wants_command_name(get_connection: Callable[..., object]) -> bool:
    """Whether a pool's ``get_connection`` requires a command name.

    redis-py before 5.3 requires one (and ignores it); 5.3 makes it optional and warns when it is
    given. Asking the signature, not the version, also covers pool subclasses.
    """
    param = inspect.signature(get_connection).parameters.get("command_name")
    return param is not None and param.default is inspect.Parameter.empty


async def checkout(pool: Any) -> Any:
    """A connection from ``pool``, called the way the installed redis-py expects."""
    if _wants_command_name(type(pool).get_connection):
        return await pool.get_connection("EVALSHA")
    return await pool.get_connection()


async def exchange(
    pool: Any,
    pack: Callable[[Any], list[bytes]],
    replies: int,
    *,
    limit: float | None = None,
    check_health: bool = True,
) -> list[Any]:
    """Send what ``pack(connection)`` packs on one pooled connection and read ``replies`` replies.

    The enqueue sender's pipelines and the worker's wait both go through here rather than redis-py's
    ``Pipeline``, whose reply path (response callbacks, error collection, reset) is the first code
    run after an idle spell, when code takes many times its warm time (``bench.pickup``). Error
    replies come back as values: the stream stays in step. A connection that died idle in the pool
    (a Redis restart, a kill) gets one retry on a fresh one, but never once a reply was read:
    resending then could run a command twice. ``limit`` bounds each attempt (checkout, send,
    every reply) with one deadline instead of redis-py's own per call (with a socket timeout it
    sends through ``asyncio.wait_for``, a task per send on Python 3.11, and arms a timer per
    reply), so the connection's socket timeout is lifted while it is this call's alone. Any other
    interruption (a timeout, a cancel) disconnects it: no reply is left unread on a pooled one.
    """
    for attempt in (1, 2):
        out: list[Any] = []
        with Deadline(limit):
            conn = await checkout(pool)
            socket_timeout, conn.socket_timeout = conn.socket_timeout, None
            try:
                await conn.send_packed_command(pack(conn), check_health=check_health)
                for _ in range(replies):
                    try:
                        out.append(await conn.read_response())
                    except ResponseError as exc:
                        out.append(exc)
                return out
            except RedisConnectionError:
                await conn.disconnect()
                if attempt == 2 or out:
                    raise
            except BaseException:
                await conn.disconnect()
                raise
            finally:
                conn.socket_timeout = socket_timeout
                await pool.release(conn)
    raise AssertionError("unreachable")  # pragma: no cover


# hiredis's stub types the argument as a 1-tuple; it takes a command of any length
_hiredis_pack = cast(Callable[[tuple[Any, ...]], bytes], hiredis.pack_command)


def _connected(self: Any) -> bool:
    """A connection's ``is_connected``: a reader and a writer, and a transport still open.

    uvloop closes a transport whose write failed (a Redis killed under an idle pool: SIGKILL, a
    failover) while redis-py still holds the reader and writer and calls the connection connected.
    Even redis-py's idle probe can lend such a connection: its zero-timeout read lets the loop run
    a turn, in which the close can land after the probe saw nothing. The next write then raises
    RuntimeError, which no retry expects. So a closed transport is forgotten here, as
    ``disconnect`` would forget it (redis-py's sentinel connection reconnects only once its reader
    is gone), and the connection reads as not connected: it is connected again before the next
    write (redis-py's send does so), and no pool of ours lends it as it is.
    """
    writer = self._writer
    if self._reader is None or writer is None:
        return False
    if writer.transport.is_closing():
        self._parser.on_disconnect()
        writer.close()
        self._reader = self._writer = None
        return False
    return True


def _with_connected_check(base: type[C], attrs: dict[str, Any] | None = None) -> type[C]:
    """A subclass of ``base`` (with ``attrs``) whose ``is_connected`` also asks whether the
    transport is still open (``_connected``): for every connection class our clients use."""
    body = {"__module__": __name__, **(attrs or {}), "is_connected": property(_connected)}
    return cast(type[C], type(base.__name__, (base,), body))


def _fast_connection(base: type[C]) -> type[C]:
    """``base`` made cheaper per command: hiredis packs it, and no idle probe.

    * Packing: redis-py's synchronous connections pack with hiredis (C) when it is installed; its
      asyncio ones run a Python loop, a tenth of a draining worker's CPU (every claim, finish and
      task command). The output is byte for byte the same (str as UTF-8, int, float as ``repr``,
      bytes, memoryview); anything else (bool, None, bytearray...) goes to redis-py's own packer,
      which raises its usual DataError.
    * The idle probe: before lending a connection, the pool tries a non-blocking read under
      ``asyncio.timeout(0)`` to catch one handed back with a reply unread, about a quarter of a
      small command's client CPU. redis-py disconnects a connection whenever a command on it is
      interrupted (error, timeout, cancel), so a lent connection never has a reply pending; a
      socket the server closed while idle fails the next command with ConnectionError, which
      the client's one retry sends again on a fresh connection (the enqueue sender's own retry,
      likewise, as long as no reply was read). The probe is also a turn of the event loop before
      every command: off, an enqueue inside a web request costs less (`make bench-web`, same run:
      enqueue / no-op route 0.82 -> 0.89 median of 3).
    * Connected means the transport is open too (``_connected``).
    """

    def pack_command(self: Any, *args: Any) -> list[bytes]:
        first = args[0]
        if isinstance(first, str):
            args = (*first.encode().split(), *args[1:])
        elif b" " in first:
            args = (*first.split(), *args[1:])
        try:
            return [_hiredis_pack(args)]
        except TypeError:
            return base.pack_command(self, *args)

    async def can_read_destructive(self: Any) -> bool:
        return False

    return _with_connected_check(base, {"pack_command": pack_command, "can_read_destructive": can_read_destructive})


class _LendingPool(ConnectionPool):
    """Every plain client's pool: an idle connection that is connected is lent at once.

    redis-py's ``get_connection`` takes the pool's lock, then connects the connection and runs the
    idle probe, both no-ops for a connected connection of our clients (the probe is off, see
    ``_fast_connection``), each a coroutine call, for every command. Taking the connection and
    marking it in use involves no ``await``, so nothing else can run in between: the lock is only
    needed where a connection must first connect, which is left to redis-py. Four coroutine
    calls are little warm, but a lone enqueue after an idle spell runs them cold, where code
    takes many times its warm time (``bench.pickup`` measures both; bench/README.md).
    """

    async def get_connection(self, *args: Any, **kwargs: Any) -> AbstractConnection:
        available = self._available_connections
        if available and available[-1].is_connected:
            connection: AbstractConnection = available.pop()
            self._in_use_connections.add(connection)
            return connection
        if not args and "command_name" not in kwargs and _wants_command_name(ConnectionPool.get_connection):
            args = ("EVALSHA",)  # redis-py before 5.3 requires a name (and ignores it); ``checkout`` gave none
        return cast(AbstractConnection, await super().get_connection(*args, **kwargs))


class ScalrRedis(ArqRedis):
    """arq's Redis client whose ``enqueue_job`` goes through scalr_queue.

    arq's cron scheduler and task code calling ``ctx["redis"].enqueue_job(...)`` (the usual
    arq idiom) therefore get JSON payloads, no silent expiry and instant wake-ups too.
    """

    scalr_client: Enqueuer | None = None  # set by whoever made this client to enqueue through
    sentinel_manager: Sentinel | None = None  # the sentinels a redis+sentinel:// client asks for the master

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        """Close the client, and the connections to the sentinels it asked (they are its own)."""
        await super().aclose(close_connection_pool)
        if self.sentinel_manager is not None:
            sentinels: list[Redis] = self.sentinel_manager.sentinels
            for client in sentinels:
                await client.aclose()

    async def enqueue_job(
        self,
        function: str,
        *args: Any,
        _job_id: str | None = None,
        _queue_name: str | None = None,
        _defer_until: datetime | None = None,
        _defer_by: float | timedelta | None = None,
        _expires: float | timedelta | None = None,
        _job_try: int | None = None,
        **kwargs: Any,
    ) -> ArqJob | None:
        options = {
            "_job_id": _job_id,
            "_queue_name": _queue_name,
            "_defer_until": _defer_until,
            "_defer_by": _defer_by,
            "_expires": _expires,
            "_job_try": _job_try,
        }
        return await _enqueue_through(self, function, args, kwargs, options)


async def _enqueue_through(
    redis: Any, function: str, args: tuple[Any, ...], kwargs: dict[str, Any], options: dict[str, Any]
) -> ArqJob | None:
    """arq's ``enqueue_job`` on a ScalrRedis or a ScalrRedisCluster, through its scalr_queue client."""
    from arq.jobs import Job as ArqJob

    from ._keys import QUEUE_PREFIX, queue_key, untag

    client: Enqueuer | None = redis.scalr_client
    if client is None:
        raise RuntimeError("this Redis client has no scalr_queue client to enqueue through")
    name = options["_queue_name"]
    queue = untag(name.removeprefix(QUEUE_PREFIX)) if name else client.settings.queue_name
    job = await client.enqueue_call(function, args, {**kwargs, **options, "_queue_name": queue})
    if not job.created:
        return None
    return ArqJob(job.job_id, redis=redis, _queue_name=queue_key(queue), _deserializer=redis.job_deserializer)


class ScalrRedisCluster(RedisCluster):
    """The ``redis+cluster://`` client: redis-py's cluster client with what the code asks of ScalrRedis.

    Every key of one queue carries the queue's hash tag, so each script call and each pipeline
    of one queue goes to one master. A cluster pipeline cannot be a MULTI transaction: the few
    control paths that ask for one (purging the failed set) run as a plain pipeline of one slot.
    """

    scalr_client: Enqueuer | None = None
    job_serializer: Any = None
    job_deserializer: Any = None

    def pubsub(self, **kwargs: Any) -> NodePubSub:
        """Cancel pushes: a subscriber on one node, moved to another when that node fails."""
        return NodePubSub(self)

    def pipeline(self, transaction: Any | None = None, shard_hint: Any | None = None) -> ClusterPipeline:
        return super().pipeline()

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        await super().aclose()

    async def enqueue_job(self, function: str, *args: Any, **kwargs: Any) -> ArqJob | None:
        names = ("_job_id", "_queue_name", "_defer_until", "_defer_by", "_expires", "_job_try")
        options = {n: kwargs.pop(n, None) for n in names}
        return await _enqueue_through(self, function, args, kwargs, options)


def _cluster(settings: Settings, kwargs: dict[str, Any]) -> ScalrRedis:
    """A client of the whole cluster: redis-py learns the slots from the nodes in the URL and follows
    MOVED and failovers by itself. The process then builds tagged key names (``_keys``)."""
    target = parse_cluster_url(settings.redis_url)
    options = {k: v for k, v in kwargs.items() if k != "retry_on_error"}
    # redis-py's command mixins declare a connection_pool the cluster client does not have (pyright)
    make_cluster = cast(Callable[..., ScalrRedisCluster], ScalrRedisCluster)
    redis = make_cluster(
        startup_nodes=[ClusterNode(host, port) for host, port in target.nodes],
        username=target.username,
        password=target.password,
        ssl=target.tls,
        **options,
    )
    # every node's connections (the startup nodes', and those of nodes found later, which are built
    # from the same kwargs) also read a transport uvloop closed as not connected (``_connected``)
    checked = _with_connected_check(redis.connection_kwargs["connection_class"])
    redis.connection_kwargs["connection_class"] = checked
    for node in redis.nodes_manager.startup_nodes.values():
        node.connection_class = checked
    return cast(ScalrRedis, redis)


def create_redis(settings: Settings, *, blocking: bool = False) -> ScalrRedis:
    """A client for ``settings.redis_url``; ``blocking`` leaves reads and writes without a timeout.

    Producers get a connect and read timeout of ``SCALR_QUEUE_REDIS_TIMEOUT`` so a dead Redis
    fails an enqueue in about that long instead of hanging a web request. The worker's clients
    are ``blocking`` (BRPOP must wait; and redis-py's per-send timeout costs a task per command
    on Python 3.11): the worker bounds each of its own calls with ``asyncio.timeout`` instead.
    One retry on a broken connection lets a pool recover from a Redis restart quietly.
    ``memory://`` gives a client on the process's in-memory store instead (``_memory``).
    """
    from .._codec import loads

    if is_memory_url(settings.redis_url):
        memory = create_memory_redis(settings)
        memory.job_deserializer = loads
        memory.job_serializer = None
        return memory
    kwargs: dict[str, Any] = {
        "socket_connect_timeout": settings.redis_timeout,
        "socket_timeout": None if blocking else settings.redis_timeout,
        "retry": Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
        "retry_on_error": [RedisConnectionError],
        "health_check_interval": 0 if blocking else 30,
        "socket_keepalive": True,
        # no CLIENT SETINFO handshake: against a hung server each of its reads waits out the timeout
        "lib_name": None,
        "lib_version": None,
    }
    if settings.redis_url.lower().startswith(("rediss://", "rediss+sentinel://", "rediss+cluster://")):
        kwargs["ssl_cert_reqs"] = settings.tls_cert_reqs
        kwargs["ssl_check_hostname"] = settings.tls_check_hostname
        if settings.tls_ca_certs:
            kwargs["ssl_ca_certs"] = settings.tls_ca_certs
    use_tagged_keys(is_cluster_url(settings.redis_url))
    if is_cluster_url(settings.redis_url):
        redis = _cluster(settings, kwargs)
    elif is_sentinel_url(settings.redis_url):
        redis = _sentinel_master(settings, kwargs)
    else:
        redis = ScalrRedis.from_url(settings.redis_url, **kwargs)
        pool = redis.connection_pool
        if pool.connection_kwargs.get("encoding", "utf-8") == "utf-8":
            # Connection, or its TLS or unix-socket sibling: each gets its own subclass
            fast = _fast_connection(cast(type[AbstractConnection], pool.connection_class))
            pool.connection_class = cast(Any, fast)  # typed as the synchronous class in redis-py's hints
            if type(pool) is ConnectionPool:
                pool.__class__ = _LendingPool
    redis.job_deserializer = loads
    redis.job_serializer = None
    return redis


def _sentinel_master(settings: Settings, kwargs: dict[str, Any]) -> ScalrRedis:
    """A client of the service's current master, found through the sentinels (redis-py's Sentinel).

    Every new connection asks the sentinels where the master is, so after a failover the next
    connection goes to the new master; a connection still open to a demoted master answers
    READONLY, which redis-py turns into a connection error (and the pool reconnects). The
    sentinels are always asked with the producer timeout, even for the worker's blocking clients.
    """
    target = parse_sentinel_url(settings.redis_url)
    tls = {k: v for k, v in kwargs.items() if k.startswith("ssl_")}
    if target.tls:
        tls["ssl"] = True
    sentinel_kwargs: dict[str, Any] = {
        "socket_connect_timeout": settings.redis_timeout,
        "socket_timeout": settings.redis_timeout,
        "lib_name": None,
        "lib_version": None,
        **tls,
    }
    master_kwargs: dict[str, Any] = {
        **kwargs,
        "db": target.db,
        "username": target.username,
        "password": target.password,
        **({"ssl": True} if target.tls else {}),
    }
    make_sentinel = cast(Callable[..., Sentinel], Sentinel)  # redis-py leaves its __init__ untyped
    sentinel = make_sentinel(list(target.sentinels), sentinel_kwargs=sentinel_kwargs)
    redis = cast(ScalrRedis, sentinel.master_for(target.service, redis_class=ScalrRedis, **master_kwargs))
    pool = redis.connection_pool
    # redis-py's SentinelManagedConnection (it asks the sentinels on connect), typed narrowly by redis-py
    managed: Any = pool.connection_class
    pool.connection_class = cast(Any, _with_connected_check(managed))
    redis.sentinel_manager = sentinel
    return redis


def is_permission_error(exc: BaseException) -> bool:
    """A Redis ACL refusal: a command, or a command inside one of our scripts, not allowed for the user."""
    text = str(exc)
    return isinstance(exc, NoPermissionError | AuthorizationError) or (
        isinstance(exc, ResponseError)
        and ("NOPERM" in text or "no permissions to" in text or "can't run this command" in text)
    )


def unavailable(exc: BaseException, settings: Settings, doing: str) -> QueueUnavailableError:
    """Map a redis-py error to one clear line; the URL is shown with its password masked."""
    where = settings.safe_redis_url
    if isinstance(exc, AuthenticationError) or "WRONGPASS" in str(exc) or "NOAUTH" in str(exc):
        why = "Redis refused the credentials (check the user and password in REDIS_URL)"
    elif is_permission_error(exc):
        why = f"the Redis user lacks a permission scalr_queue needs ({exc}); see the README's ACL line"
    elif isinstance(exc, OutOfMemoryError) or (isinstance(exc, ResponseError) and str(exc).startswith("OOM")):
        why = "Redis is out of memory (maxmemory reached with noeviction): nothing was written"
    elif isinstance(exc, RedisTimeoutError | asyncio.TimeoutError | TimeoutError):
        why = f"Redis did not answer within {settings.redis_timeout:g}s"
    elif isinstance(exc, RedisConnectionError | OSError):
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if isinstance(exc, MasterNotFoundError):
            text = (
                f"the sentinels know no master for this service now ({text}): a failover is under "
                "way, or the service name in REDIS_URL is wrong"
            )
        elif "Error 111" in text or "Connect call failed" in text:
            text = "connection refused: is redis-server running and REDIS_URL right?"
        elif "CERTIFICATE_VERIFY_FAILED" in text:
            text = (
                "TLS certificate not trusted: set SCALR_QUEUE_TLS_CA_CERTS to the CA file "
                "(SCALR_QUEUE_TLS_CERT_REQS=none only for a test server)"
            )
        why = f"cannot connect to Redis ({text})"
    else:
        why = f"Redis error: {type(exc).__name__}: {exc}"
    return QueueUnavailableError(f"{doing} failed: {why} [{where}]")


REDIS_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError, asyncio.TimeoutError)
