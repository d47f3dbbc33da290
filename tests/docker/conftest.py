"""Fixtures for the Docker tests (collected only with --docker: `make test-docker`).

One stack per session, because image builds are slow on small machines: a copy of this
repository with the template's worker block uncommented (as the README tells a user), brought
up with `make up` on a free loopback port, and torn down at the end even when a test fails:
`make down` for every app started, then the network and the Redis volume the run created.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from docker_support import (
    APP_IMAGES,
    CONTAINERS,
    NETWORK,
    PAUSE_TASK,
    REPORT,
    VOLUME,
    Stack,
    activate_worker,
    copy_repo,
    docker,
    exists,
    image_ids,
)

from scalr_queue.testing import free_port


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(pytest.mark.timeout(600))  # builds and health intervals, not the usual 60 s


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if REPORT:
        terminalreporter.section("docker")
        for key, value in REPORT.items():
            terminalreporter.write_line(f"{key}: {value}")


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if subprocess.run(["docker", "info"], capture_output=True, check=False).returncode != 0:
        pytest.fail("no Docker engine answers: run `make test-docker`, which starts one", pytrace=False)
    taken = [n for n in CONTAINERS if exists("container", n)]
    taken += [f"network {NETWORK}"] if exists("network", NETWORK) else []
    taken += [f"volume {VOLUME}"] if exists("volume", VOLUME) else []
    if taken:
        pytest.fail(
            f"these already exist: {', '.join(taken)}. The tests would share or remove them: "
            "run `make down` (and `docker volume rm scalr-redis-data` if its data may go) first",
            pytrace=False,
        )
    # An app image already here (a developer's own `make up`) is set aside under another tag
    # and put back at the end: the run builds its own under the same name.
    images_before = {image for image in APP_IMAGES if exists("image", image)}
    for image in images_before:
        docker("tag", image, set_aside(image))

    repo = copy_repo(tmp_path_factory.mktemp("docker") / "repo")
    activate_worker(repo / "template-app")
    worker_py = repo / "template-app" / "backend" / "src" / "worker.py"
    worker_py.write_text(worker_py.read_text() + PAUSE_TASK)
    stack = Stack(repo=repo, port=free_port())
    try:
        before = image_ids()
        stack.make("up")
        stack.images_from_first_up = image_ids() - before
        yield stack
    finally:
        teardown(stack, images_before)


def teardown(stack: Stack, images_before: set[str]) -> None:
    """Stop and remove what the session created, keep going past errors, then report them."""
    errors: list[str] = []
    for app in [*(a for a in stack.ports if a != "template-app"), "template-app"]:
        try:
            stack.make("down", app=app, timeout=400)
        except AssertionError as exc:
            errors.append(str(exc))
    for name in CONTAINERS:  # left over only if a `make down` failed
        if exists("container", name):
            docker("rm", "-f", name, check=False)
    docker("network", "rm", NETWORK, check=False)
    docker("volume", "rm", VOLUME, check=False)
    for image in APP_IMAGES:
        docker("image", "rm", image, check=False)
    for image in images_before:
        docker("tag", set_aside(image), image, check=False)
        docker("image", "rm", set_aside(image), check=False)
    left = [n for n in CONTAINERS if exists("container", n)]
    left += [NETWORK] if exists("network", NETWORK) else []
    left += [VOLUME] if exists("volume", VOLUME) else []
    assert not left and not errors, f"teardown left {left}; errors: {errors}"


def set_aside(image: str) -> str:
    return image.rsplit(":", 1)[0] + ":set-aside-by-test-docker"


@pytest.fixture
def override_dir(stack: Stack) -> Path:
    """Where a test writes compose override files: inside the copy, next to the apps."""
    path = stack.repo / "overrides"
    path.mkdir(exist_ok=True)
    return path
