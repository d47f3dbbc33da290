"""``REDIS_URL=redis+cluster://...``: parsed in one line, and the tagged key layout it selects.

The cluster itself runs in ``make test-cluster`` (tests/cluster); these need no cluster.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from scalr_queue import ConfigurationError
from scalr_queue._settings import load_settings
from scalr_queue.redis import _scripts
from scalr_queue.redis._keys import (
    failed_key,
    job_key,
    key_tag,
    progress_key,
    queue_key,
    result_key,
    tagged_keys,
    tries_key,
    untag,
    use_tagged_keys,
)
from scalr_queue.redis._url import ClusterTarget, is_cluster_url, parse_cluster_url


@pytest.fixture
def tagged() -> Iterator[None]:
    use_tagged_keys(True)
    yield
    use_tagged_keys(False)


def test_cluster_url_lists_nodes_with_credentials_and_tls() -> None:
    target = parse_cluster_url("rediss+cluster://app:p%40ss@h1:7000,h2,[::1]:7002")
    assert target == ClusterTarget(
        nodes=(("h1", 7000), ("h2", 6379), ("::1", 7002)), username="app", password="p@ss", tls=True
    )
    assert is_cluster_url("REDIS+CLUSTER://h:7000") and not is_cluster_url("redis://h:6379/0")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis+cluster://", "lists no cluster node"),
        ("redis+cluster://h1:7000,,h2", "lists no cluster node, or an empty one"),
        ("redis+cluster://h1:7000/3", "has only database 0"),
        ("redis+cluster://h1:port", "cluster node 'h1:port': the port must be a number"),
        ("redis+cluster://h1?x=1", "takes no query"),
    ],
)
def test_a_malformed_cluster_url_is_refused_in_one_line(url: str, expected: str) -> None:
    with pytest.raises(ValueError, match=expected):
        parse_cluster_url(url)
    with pytest.raises(ConfigurationError) as info:
        load_settings(REDIS_URL=url)
    assert "\n" not in str(info.value).strip()
    use_tagged_keys(False)


def test_one_redis_keeps_arqs_names_exactly() -> None:
    load_settings(REDIS_URL="redis://127.0.0.1:6379/0")
    assert not tagged_keys()
    assert (queue_key("mail"), job_key("j1", "mail"), result_key("j1")) == (
        "arq:queue:mail",
        "arq:job:j1",
        "arq:result:j1",
    )
    assert _scripts.for_tag(_scripts.CLAIM, "") == _scripts.CLAIM


def test_a_cluster_url_tags_every_key_of_a_queue(tagged: None) -> None:
    load_settings(REDIS_URL="redis+cluster://127.0.0.1:7000")
    try:
        assert tagged_keys()
        names = [queue_key("mail"), failed_key("mail"), job_key("j1", "mail"), tries_key("j1", "mail")]
        assert names == ["arq:queue:{mail}", "scalr:failed:{mail}", "arq:job:{mail}j1", "scalr:tries:{mail}j1"]
        assert progress_key("mail", "j1") == "scalr:progress:{mail}:j1"
        assert {key_tag(n) for n in names} == {"{mail}"}
        assert untag("{mail}") == "mail" and untag("mail") == "mail"
    finally:
        load_settings(REDIS_URL="redis://127.0.0.1:6379/0")
    assert not tagged_keys()


def test_scripts_build_per_job_names_with_the_queues_tag() -> None:
    tagged_claim = _scripts.for_tag(_scripts.CLAIM, "{mail}")
    assert "'arq:job:{mail}' .. " in tagged_claim and "'arq:in-progress:{mail}' .. " in tagged_claim
    assert "'arq:job:' .. " not in tagged_claim
    assert _scripts.sha(tagged_claim) != _scripts.sha(_scripts.CLAIM)
