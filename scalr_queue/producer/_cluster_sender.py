"""Enqueue scripts on a Redis Cluster: the same calls as ``ScriptSender``, routed by redis-py.

``ScriptSender`` writes pipelines straight onto one connection of one server, which a cluster
does not have. Here each call is an EVALSHA that redis-py's cluster client sends to the master of
its keys' slot (all keys of one job carry its queue's tag), and ``send`` pipelines a batch through
a cluster pipeline, which groups the calls per master: one round trip per master touched.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.exceptions import NoScriptError

from ..redis import _scripts
from ..redis._connection import eval_script
from ..redis._keys import key_tag

Command = tuple[bytes | str | int, ...]


class ClusterScriptSender:
    """Runs one Lua script (tagged per queue) for many callers over a cluster client."""

    def __init__(self, redis: Any, script: str) -> None:
        self.redis = redis
        self.script = script

    def command(self, keys: Sequence[str], args: Sequence[bytes | str | int]) -> Command:
        tagged = _scripts.for_tag(self.script, key_tag(keys[0]))
        return ("EVALSHA", _scripts.sha(tagged), len(keys), *keys, *args)

    async def call(self, keys: Sequence[str], args: Sequence[bytes | str | int]) -> Any:
        return await eval_script(self.redis, self.script, keys, args)

    async def send(self, commands: list[Command]) -> list[Any]:
        """Pipeline ``commands``; a call whose master lacks the script is run again with EVAL."""
        async with self.redis.pipeline() as pipe:
            for command in commands:
                pipe.execute_command(*command)
            results: list[Any] = await pipe.execute(raise_on_error=False)
        for i, (result, command) in enumerate(zip(results, commands, strict=True)):
            if isinstance(result, NoScriptError):
                n = int(command[2])
                keys = [str(k) for k in command[3 : 3 + n]]
                try:
                    results[i] = await eval_script(self.redis, self.script, keys, command[3 + n :])
                except Exception as exc:
                    results[i] = exc
        return results
