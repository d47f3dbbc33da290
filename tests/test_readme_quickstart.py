"""The README's library quickstart, run as written: its task module, its enqueue lines and its
worker command, against a real redis-server and a real worker process."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.support import ROOT

pytestmark = pytest.mark.timeout(60)


def _quickstart_blocks() -> tuple[str, str, str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Library quickstart", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```(\w+)\n(.*?)```", section, re.DOTALL)
    python = [body for lang, body in blocks if lang == "python"]
    shell = [body for lang, body in blocks if lang == "sh"]
    assert len(python) == 2 and len(shell) == 2, "the quickstart has two python blocks and two sh blocks"
    return python[0], python[1], shell[1].split("#", 1)[0].strip()


def test_readme_quickstart_runs_as_written(redis_url: str, tmp_path: Path) -> None:
    tasks_py, web_code, worker_cmd = _quickstart_blocks()
    assert tasks_py.startswith("# tasks.py\n")
    (tmp_path / "tasks.py").write_text(tasks_py)
    # the web lines use top-level await, as inside a route: run them in a coroutine
    app = "import asyncio\n\nasync def main():\n" + textwrap.indent(web_code, "    ")
    app += "    import scalr_queue\n    await scalr_queue.close()\n\nasyncio.run(main())\n"
    (tmp_path / "app.py").write_text(app)
    assert worker_cmd.startswith("python -m scalr_queue.worker ")
    env = {**os.environ, "REDIS_URL": redis_url}
    worker = subprocess.Popen(
        [sys.executable, *worker_cmd.split()[1:]],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        out = subprocess.run(
            [sys.executable, "app.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30, check=False
        )
        assert out.returncode == 0, out.stderr[-2000:]
        assert out.stdout.strip() == "sent invoice 42"
    finally:
        worker.terminate()
        log, _ = worker.communicate(timeout=30)
    assert worker.returncode == 0, log[-2000:]
    assert "Starting worker for 1 functions: send_invoice_email" in log
