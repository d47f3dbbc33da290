"""Settings: env names, duration forms, one-line errors, and the password never shown."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from scalr_queue import ConfigurationError, Settings
from scalr_queue._settings import load_settings, mask_url
from tests.support import spawn_worker


def test_defaults_match_the_platform_page(set_env: Callable[..., None]) -> None:
    set_env(REDIS_URL=None)
    s = load_settings()
    assert (s.redis_url, s.concurrency, s.job_timeout, s.max_tries, s.retry_delay, s.keep_result) == (
        "redis://localhost:6379/0",
        10,
        300.0,
        5,
        1.0,
        3600.0,
    )
    assert s.queue_name == "default"


@pytest.mark.parametrize(
    ("raw", "seconds"), [("2.5", 2.5), ("250ms", 0.25), ("10s", 10.0), ("5m", 300.0), ("1h", 3600.0), ("3", 3.0)]
)
def test_durations_accept_seconds_and_suffixes(set_env: Callable[..., None], raw: str, seconds: float) -> None:
    set_env(SCALR_QUEUE_JOB_TIMEOUT=raw)
    assert load_settings().job_timeout == seconds


@pytest.mark.parametrize(
    ("var", "value", "expected"),
    [
        ("SCALR_QUEUE_JOB_TIMEOUT", "soon", "expected a duration in seconds (2.5) or with a unit"),
        ("SCALR_QUEUE_JOB_TIMEOUT", "-5", "not negative"),
        ("SCALR_QUEUE_LEASE", "0", "greater than zero"),
        ("SCALR_QUEUE_CONCURRENCY", "0", "greater than or equal to 1"),
        ("SCALR_QUEUE_CONCURRENCY", "lots", "whole number"),
        ("SCALR_QUEUE_MAX_TRIES", "99999", "less than or equal to 1000"),
        ("SCALR_QUEUE_LOG_FORMAT", "xml", "expected 'plain' or 'json'"),
        ("SCALR_QUEUE_QUEUE_NAME", "bad name!", "letters, digits"),
        ("SCALR_QUEUE_MAX_PAYLOAD", "huge", "a size in bytes"),
        ("REDIS_URL", "http://localhost:6379", "scheme must be redis://, rediss:// or unix://"),
        ("REDIS_URL", "redis://localhost:notaport/0", "port must be a number"),
        ("REDIS_URL", "redis://localhost:6379/zero", "database must be a number"),
    ],
)
def test_invalid_setting_is_one_line_naming_the_variable(
    set_env: Callable[..., None], var: str, value: str, expected: str
) -> None:
    set_env(**{var: value})
    with pytest.raises(ConfigurationError) as info:
        load_settings()
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"invalid setting {var}=")
    assert expected in message


def test_redis_url_forms_with_user_password_db_and_tls(set_env: Callable[..., None]) -> None:
    for url in ("rediss://default:s3cret@cache.internal:6380/2", "redis://:pw@127.0.0.1/0", "unix:///tmp/r.sock"):
        set_env(REDIS_URL=url)
        assert load_settings().redis_url == url


def test_password_is_masked_in_errors_and_descriptions(set_env: Callable[..., None]) -> None:
    set_env(REDIS_URL="redis://app:hunter22@host:bad/0")
    with pytest.raises(ConfigurationError) as info:
        load_settings()
    assert "hunter22" not in str(info.value) and "app:***@" in str(info.value)
    set_env(REDIS_URL="rediss://app:hunter22@host:6380/1")
    assert "hunter22" not in load_settings().describe()
    assert mask_url("redis://u:p%40ss@h:1/0") == "redis://u:***@h:1/0"


def test_worker_exits_2_with_one_line_on_a_bad_setting(worker_module: Callable[..., Path]) -> None:
    cwd = worker_module("async def t(ctx):\n    pass\ntasks = [t]\n")
    proc = spawn_worker(
        "jobs_mod", cwd, env={"SCALR_QUEUE_CONCURRENCY": "ten", "REDIS_URL": "redis://u:topsecret@127.0.0.1:1/0"}
    )
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert out.strip().splitlines() == [
        "python -m scalr_queue.worker: error: invalid setting SCALR_QUEUE_CONCURRENCY='ten': expected a whole number"
    ]


def test_settings_take_the_field_name_as_well_as_the_variable_name() -> None:
    # on the oldest allowed pydantic-settings the field name used to be dropped silently
    assert Settings(redis_url="redis://h:1/0").redis_url == "redis://h:1/0"
    assert Settings(REDIS_URL="redis://g:2/0").redis_url == "redis://g:2/0"
    assert Settings(queue_name="mail").queue_name == "mail"
