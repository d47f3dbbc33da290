"""Static checks of the Docker files, compose files and .env.shared.

Fast and engine-free, so they run in every `make test`: the compose files are validated against
the compose-spec JSON schema and parsed with PyYAML (also as they are once the worker block is
uncommented), the Dockerfile is read by BuildKit's own parser, and their promises are checked.
The redis.conf is loaded by a real redis-server. The e2e tests run the image's CMD and the
worker's command as local processes; `make test-docker` (tests/docker) proves the same files on
a real Docker engine.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import redis
import yaml
from template_support import (
    BACKEND,
    REPO,
    TEMPLATE,
    clean_env,
    compose_worker_command,
    compose_worker_health_port,
    dockerfile_cmd,
    dockerfile_commands,
    duration_seconds,
    instructions,
    load_compose,
    uncomment_worker_block,
)

from scalr_queue._settings import Settings
from scalr_queue.testing import RedisServer

WORKER_COMMAND = ["python", "-m", "scalr_queue.worker", "src.worker"]
APP_COMPOSE = TEMPLATE / "docker-compose.yml"
REDIS_COMPOSE = REPO / "services" / "redis" / "docker-compose.yml"


@pytest.fixture(scope="module")
def app() -> dict:
    return load_compose(APP_COMPOSE, uncomment_worker=True)


def test_worker_block_ships_commented_out() -> None:
    services = load_compose(APP_COMPOSE)["services"]
    assert set(services) == {"backend"}
    assert "  # worker:" in APP_COMPOSE.read_text()


def test_uncommenting_the_worker_block_gives_valid_compose(app: dict) -> None:
    assert set(app["services"]) == {"backend", "worker"}
    # and nothing but the worker block changed
    text = APP_COMPOSE.read_text()
    assert yaml.safe_load(uncomment_worker_block(text))["networks"] == yaml.safe_load(text)["networks"]


def test_backend_builds_the_one_image_the_worker_runs(app: dict) -> None:
    backend, worker = app["services"]["backend"], app["services"]["worker"]
    assert backend["build"] == {"context": "..", "dockerfile": "template-app/Dockerfile"}
    # A `build:` in both would make compose build the image twice per `make up`.
    assert "build" not in worker
    assert backend["image"] == worker["image"]
    assert (APP_COMPOSE.parent / backend["build"]["context"]).resolve() == REPO
    assert (REPO / backend["build"]["dockerfile"]).is_file()


def test_container_names_follow_the_app_name(app: dict) -> None:
    assert app["name"] == "template-app"
    assert app["services"]["backend"]["container_name"] == "template-app-backend"
    assert app["services"]["worker"]["container_name"] == "template-app-worker"


def test_both_services_run_under_an_init_that_passes_signals_on(app: dict) -> None:
    # Python as PID 1 ignores a SIGTERM that comes before it sets a handler.
    assert app["services"]["backend"]["init"] is True
    assert app["services"]["worker"]["init"] is True


def test_worker_command_is_exactly_the_pages(app: dict) -> None:
    assert compose_worker_command() == WORKER_COMMAND
    assert "command" not in app["services"]["backend"]  # the backend runs the image's CMD


def test_both_services_use_env_shared_and_the_external_network(app: dict) -> None:
    for name in ("backend", "worker"):
        service = app["services"][name]
        assert service["env_file"] == "../.env.shared"
        assert (APP_COMPOSE.parent / service["env_file"]).resolve() == REPO / ".env.shared"
        assert service["networks"] == ["scalr-net"]
    assert app["networks"]["scalr-net"] == {"name": "scalr-net", "external": True}


def test_worker_stop_grace_outlasts_its_job_timeout_and_drain(app: dict) -> None:
    worker = app["services"]["worker"]
    env = worker.get("environment", {})
    defaults = Settings.model_fields
    job_timeout = float(env.get("SCALR_QUEUE_JOB_TIMEOUT", defaults["job_timeout"].default))
    drain = float(env.get("SCALR_QUEUE_SHUTDOWN_GRACE", defaults["shutdown_grace"].default))
    grace = duration_seconds(worker["stop_grace_period"])
    assert grace > job_timeout
    assert grace > drain
    assert drain >= job_timeout  # running jobs may finish on `docker stop` instead of being cut


def test_healthchecks_probe_the_real_thing(app: dict) -> None:
    backend_check = app["services"]["backend"]["healthcheck"]["test"]
    assert backend_check[0] == "CMD" and "/healthz" in " ".join(backend_check)
    # the worker's probe asks the worker process itself (its /healthz), with what the image has:
    # python's urllib, no curl; the port it asks is the one the worker is told to serve
    worker = app["services"]["worker"]
    worker_check = worker["healthcheck"]["test"]
    env = worker["environment"]
    assert worker_check[:3] == ["CMD", "python", "-c"] and "urllib.request" in worker_check[3]
    assert f"'http://127.0.0.1:{env['SCALR_QUEUE_HEALTH_PORT']}/healthz'" in worker_check[3]
    assert compose_worker_health_port() != 8000  # not the backend's port: both can share a pod
    # reachable by a probe from outside the container, never published on the host
    assert env["SCALR_QUEUE_HEALTH_HOST"] == "0.0.0.0" and "ports" not in worker
    check = worker["healthcheck"]
    assert duration_seconds(check["timeout"]) < duration_seconds(check["interval"])


def test_backend_port_is_published_on_loopback_only(app: dict) -> None:
    (port,) = app["services"]["backend"]["ports"]
    assert port.startswith("127.0.0.1:") and port.endswith(":8000")


@pytest.mark.parametrize("variant", ["as shipped", "worker uncommented", "shared redis"])
def test_compose_files_follow_the_compose_spec(variant: str, tmp_path: Path) -> None:
    """Validated against the compose-spec JSON schema (bundled with check-jsonschema)."""
    if variant == "shared redis":
        path = REDIS_COMPOSE
    elif variant == "as shipped":
        path = APP_COMPOSE
    else:
        path = tmp_path / "docker-compose.yml"
        path.write_text(uncomment_worker_block(APP_COMPOSE.read_text()))
    out = compose_schema_check(path)
    assert out.returncode == 0, out.stdout + out.stderr


def test_compose_schema_check_catches_a_misspelled_key(tmp_path: Path) -> None:
    path = tmp_path / "docker-compose.yml"
    path.write_text(uncomment_worker_block(APP_COMPOSE.read_text()).replace("stop_grace_period", "stop_grace_perod"))
    out = compose_schema_check(path)
    assert out.returncode != 0 and "stop_grace_perod" in out.stdout


def compose_schema_check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )


# --- Dockerfile -----------------------------------------------------------------------------


def test_dockerfile_builds_without_pulling_a_frontend_image() -> None:
    # A `# syntax=` line makes BuildKit pull a frontend image first: no build where nothing
    # can be pulled. The built-in frontend reads this file as it is.
    first = (TEMPLATE / "Dockerfile").read_text().splitlines()[0]
    assert not first.replace(" ", "").lower().startswith("#syntax=")


def test_dockerfile_uses_a_slim_python_base_and_a_non_root_user() -> None:
    (base,) = instructions("FROM")
    assert base.value[0].startswith("python:3.11-slim")
    users = instructions("USER")
    assert users and users[-1].value[0] not in ("root", "0")
    keywords = [c.cmd for c in dockerfile_commands()]
    assert keywords.index("USER") < keywords.index("CMD")


def test_dockerfile_installs_the_pins_then_scalr_queue_from_this_repo() -> None:
    runs = [c.value[0] for c in instructions("RUN")]
    assert any("pip install --no-cache-dir -r /tmp/requirements.txt" in r for r in runs)
    assert any("pip install --no-cache-dir --no-deps /tmp/scalr-queue" in r for r in runs)
    copies = {c.value[-1]: c.value[:-1] for c in instructions("COPY")}
    assert copies["/tmp/requirements.txt"] == ("requirements.txt",)
    assert copies["/tmp/scalr-queue/scalr_queue"] == ("scalr_queue",)
    assert set(copies["/tmp/scalr-queue/"]) == {"pyproject.toml", "README.md"}  # what pip needs to build it


def test_every_copy_source_exists_and_passes_the_dockerignore() -> None:
    ignore = (TEMPLATE / "Dockerfile.dockerignore").read_text().splitlines()
    allowed = {line[1:] for line in ignore if line.startswith("!")}
    for copy in instructions("COPY"):
        for source in copy.value[:-1]:
            assert (REPO / source).exists(), f"COPY {source}: not in the build context (the repo root)"
            assert any(source == a or source.startswith(a + "/") for a in allowed), f"{source} is dockerignored"


def test_dockerfile_cmd_serves_the_app_without_reload() -> None:
    cmd = dockerfile_cmd()
    assert cmd[:2] == ["uvicorn", "src.main:app"]
    assert "--reload" not in cmd
    assert cmd[cmd.index("--host") + 1] == "0.0.0.0" and cmd[cmd.index("--port") + 1] == "8000"
    workdir = instructions("WORKDIR")[-1].value[0]
    # src/ lands in the WORKDIR, so both `src.main:app` and `src.worker` import from there.
    assert ("template-app/backend/src", f"{workdir}/src") in [c.value for c in instructions("COPY")]


def test_dockerfile_healthcheck_asks_healthz() -> None:
    (check,) = instructions("HEALTHCHECK")
    assert any(f.startswith("--interval=") for f in check.flags)
    assert any(f.startswith("--timeout=") for f in check.flags)
    assert check.json and check.value[:2] == ("CMD", "python")
    assert "http://127.0.0.1:8000/healthz" in check.value[-1]


def test_dockerfile_names_the_worker_module_for_strict_enqueue_checks() -> None:
    env: dict[str, str] = {}
    for c in instructions("ENV"):
        env.update(zip(c.value[::2], c.value[1::2], strict=True))
    assert env["SCALR_QUEUE_TASKS"] == "src.worker"
    assert (BACKEND / "src" / "worker.py").is_file()


# --- services/redis -------------------------------------------------------------------------


def test_shared_redis_compose() -> None:
    compose = load_compose(REDIS_COMPOSE)
    redis_service = compose["services"]["redis"]
    assert redis_service["container_name"] == "scalr-redis"
    assert redis_service["image"].split(":")[1].startswith("7")
    assert redis_service["networks"] == ["scalr-net"]
    assert compose["networks"]["scalr-net"] == {"name": "scalr-net", "external": True}
    assert redis_service["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    volume_names = [v.split(":")[0] for v in redis_service["volumes"]]
    assert any(name in compose["volumes"] for name in volume_names)  # a named volume for /data
    assert "scalr-redis-data:/data" in redis_service["volumes"]
    conf_mount = next(v for v in redis_service["volumes"] if v.endswith(":ro"))
    host_path, container_path, _ = conf_mount.split(":")
    assert (REDIS_COMPOSE.parent / host_path).is_file()
    assert redis_service["command"] == ["redis-server", container_path]


def test_redis_conf_loads_with_appendonly_and_noeviction() -> None:
    conf = REDIS_COMPOSE.parent / "redis.conf"
    server = RedisServer(extra_args=())
    # Load the real file; only where it listens and writes is overridden for the test.
    server.command = lambda: [  # type: ignore[method-assign]
        server.binary,
        str(conf),
        "--port",
        str(server.port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(server.data_dir),
        "--daemonize",
        "no",
        "--save",
        "",
    ]
    with server:
        client = redis.Redis.from_url(server.url)
        try:
            assert client.config_get("appendonly") == {"appendonly": "yes"}
            assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
            assert int(client.config_get("maxmemory")["maxmemory"]) > 0
        finally:
            client.close()


# --- .env.shared ----------------------------------------------------------------------------


def test_env_shared_sets_redis_url_and_documents_every_setting_with_its_default() -> None:
    lines = (REPO / ".env.shared").read_text().splitlines()
    assert "REDIS_URL=redis://scalr-redis:6379/0" in lines
    set_lines = [line for line in lines if line and not line.startswith("#")]
    assert set_lines == ["REDIS_URL=redis://scalr-redis:6379/0"]
    documented = {
        line[2:].split("=", 1)[0]: line[2:].split("=", 1)[1]
        for line in lines
        if line.startswith("# SCALR_QUEUE_") and "=" in line
    }
    expected = {"SCALR_QUEUE_" + name.upper() for name in Settings.model_fields if name != "redis_url"}
    assert set(documented) == expected
    # each shown default is what Settings really uses when the variable is that value
    for name, shown in documented.items():
        if shown == "":
            assert Settings.model_fields[name.removeprefix("SCALR_QUEUE_").lower()].default in (None, "")
            continue
        field = name.removeprefix("SCALR_QUEUE_").lower()
        parsed = getattr(Settings(**{field: shown}), field)
        assert parsed == Settings.model_fields[field].default, name


def test_makefile_up_creates_the_network_then_redis_then_the_app() -> None:
    assert make_dry_run("up", "APP=template-app") == [
        "docker network inspect scalr-net >/dev/null 2>&1 || docker network create scalr-net",
        "docker compose -f services/redis/docker-compose.yml up -d",
        "docker compose -f template-app/docker-compose.yml up -d --build",
    ]


def test_makefile_down_keeps_a_redis_another_app_still_uses() -> None:
    dry = make_dry_run("down", "APP=billing")
    assert dry[0] == "docker compose -f billing/docker-compose.yml down"
    rest = "\n".join(dry[1:])
    assert "docker ps --filter network=scalr-net" in rest and "keeping the shared Redis" in rest
    assert "docker compose -f services/redis/docker-compose.yml down" in rest


def test_makefile_worker_logs_follows_unless_follow_is_0() -> None:
    assert make_dry_run("worker-logs") == ["docker logs -f --tail=100 template-app-worker"]
    assert make_dry_run("worker-logs", "FOLLOW=0", "APP=billing") == ["docker logs --tail=100 billing-worker"]


def make_dry_run(*args: str) -> list[str]:
    return subprocess.run(
        ["make", "--no-print-directory", "-n", *args],
        cwd=REPO,
        env=clean_env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()


def test_makefile_has_every_developer_target() -> None:
    out = subprocess.run(
        ["make", "--no-print-directory", "help"], cwd=REPO, env=clean_env(), capture_output=True, text=True, check=True
    ).stdout
    targets = {line.split()[1] for line in out.splitlines() if line.startswith("  make ")}
    assert {
        "test",
        "lint",
        "fmt",
        "dev",
        "up",
        "down",
        "logs",
        "ps",
        "worker-logs",
        "queue-depth",
        "new-app",
        "bench",
        "bench-quick",
        "reliability",
        "test-docker",
        "help",
    } <= targets
