"""The other asyncio queues the benchmark runs beside arq and scalr_queue, each in its own venv.

Every module here is imported only by that peer's interpreter (``bench/.venvs/<name>/bin/python``,
built by ``scripts/bench-peers.sh``): the redis-py they bring (6 to 8) conflicts with arq's <6, so nothing in the
project's own venv imports them. Each module gives the worker side (what the peer's own CLI
loads) and a producer for ``bench.clients``; the job body is ``bench.workers.noop`` for all.
"""
