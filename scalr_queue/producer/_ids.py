"""Job ids: 128 random bits as 32 hex digits (arq's ``uuid4().hex`` format), drawn from a buffer.

``secrets.token_hex`` makes one system call per id. Warm that is about a microsecond, but after an
idle spell, when code runs many times slower than warm, it is one of the larger costs on a lone
enqueue's way to Redis. Ids are therefore cut from one ``os.urandom`` read of 64 at a time: the
same randomness (the ids stay unguessable, so a job id in a URL gives nothing away), one system
call per 64 enqueues.

Popping from a list is atomic under the GIL, so threads never share an id; two that find the
buffer empty at once each add 64 fresh ones. A forked child drops the buffer it inherited, or
parent and child would hand out the same ids.
"""

from __future__ import annotations

import os

_BATCH = 64
_ids: list[str] = []


def new_job_id() -> str:
    """A fresh random job id."""
    try:
        return _ids.pop()
    except IndexError:
        digits = os.urandom(16 * _BATCH).hex()
        _ids.extend([digits[i : i + 32] for i in range(0, 32 * _BATCH, 32)])
        return _ids.pop()


def _forget() -> None:
    _ids.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget)
