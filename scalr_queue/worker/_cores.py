"""How many worker processes ``--processes auto`` starts: the cores this container may really use.

``os.cpu_count()`` reports the host's cores, not the container's: a container limited to 2 CPUs on a
64-core host would start 64 workers that fight over 2 cores. The CPU affinity mask (``--cpuset-cpus``)
and the cgroup CPU quota (``--cpus``, Kubernetes ``limits.cpu``) both bound it; a fractional quota
rounds up, so ``--cpus 1.5`` gives 2 processes.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def cgroup_cpu_limit(root: Path = CGROUP_ROOT) -> float | None:
    """The CPU quota in cores (cgroup v2 ``cpu.max``, else v1 ``cpu.cfs_quota_us``), or None if unlimited."""
    v2 = _read(root / "cpu.max")
    if v2 is not None:
        quota, _, period = v2.partition(" ")
        if quota == "max" or not period:
            return None
        return int(quota) / int(period)
    for v1 in (root / "cpu", root / "cpu,cpuacct"):
        quota_us, period_us = _read(v1 / "cpu.cfs_quota_us"), _read(v1 / "cpu.cfs_period_us")
        if quota_us is not None and period_us is not None:
            return None if int(quota_us) < 0 else int(quota_us) / int(period_us)
    return None


def available_cores(root: Path = CGROUP_ROOT) -> int:
    """Cores this process may run on: the affinity mask, capped by the cgroup quota, at least 1."""
    cores = len(os.sched_getaffinity(0))
    limit = cgroup_cpu_limit(root)
    if limit is not None:
        cores = min(cores, math.ceil(limit))
    return max(1, cores)
