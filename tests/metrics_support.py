"""Scraping Prometheus text over real HTTP and reading samples out of it."""

from __future__ import annotations

from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.support import LoggedWorker

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Every sample of a Prometheus text page, keyed by (name, labels)."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def scrape(url: str) -> tuple[str, Samples]:
    text = httpx.get(url, timeout=5).text
    return text, parse(text)


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def names(samples: Samples) -> set[str]:
    return {name for name, _ in samples}


class MetricsWorker(LoggedWorker):
    """A ``python -m scalr_queue.worker`` process serving /metrics on ``port``, output in a file."""

    def __init__(self, cwd: Path, module: str, port: int, *args: str, **env: str) -> None:
        self.port = port
        super().__init__(module, cwd, *args, env={"SCALR_QUEUE_METRICS_PORT": str(port), **env})

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/metrics"

    def scrape(self) -> Samples:
        assert self.proc.poll() is None, f"worker exited:\n{self.log()}"
        try:
            return scrape(self.url)[1]
        except httpx.TransportError:
            return {}
