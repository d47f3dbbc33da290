"""The settings reference, rendered from :class:`Settings` so that it cannot drift from the code.

Two files list every setting besides ``_settings.py``: the settings reference ``docs/settings.md``
(its table sits between two markers) and ``.env.shared`` (every setting, commented out at its default). Both are written
from the fields' names, defaults and descriptions::

    python -m scalr_queue._settings_doc          # rewrite docs/settings.md and .env.shared (make settings-docs)
    python -m scalr_queue._settings_doc --check  # exit 1 naming each file that is out of date

A test compares both files with what this module renders, so a new or changed setting fails
``make test`` until the reference is regenerated.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pydantic.fields import FieldInfo

from ._settings import Settings

ENV_PREFIX = "SCALR_QUEUE_"
TABLE_FILE = Path("docs") / "settings.md"  # the reference the README links to
README_BEGIN = "<!-- settings table: generated from scalr_queue/_settings.py by `make settings-docs` -->"
README_END = "<!-- end of the settings table -->"
ENV_SHARED_REDIS_URL = "redis://scalr-redis:6379/0"
ENV_SHARED_HEADER = """\
# Shared by every SCALR app's containers (env_file: ../.env.shared in each app's compose file).
# Only REDIS_URL is set; every other line shows a scalr_queue setting at its default.
# Uncomment to change one for all apps, or set it in one app's compose `environment:`.
# Durations take seconds (2.5) or a suffix (250ms, 10s, 5m, 1h); sizes take 1048576, 512KiB, 1MiB.
# Generated from scalr_queue/_settings.py by `make settings-docs`: edit the Settings fields, not this file.

# The shared Redis (services/redis). user:password@ and rediss:// work too, and Sentinel:
# redis+sentinel://h1:26379,h2:26379,h3:26379/mymaster/0 (docs/sentinel.md). Passwords are never logged.
"""


def env_name(field: str) -> str:
    """The environment variable that sets ``field`` (``REDIS_URL`` is shared with the whole app)."""
    return "REDIS_URL" if field == "redis_url" else ENV_PREFIX + field.upper()


def shown_default(info: FieldInfo) -> str | None:
    """The default as a user would type it (``300``, ``false``, ``1MiB``); None when unset."""
    extra = info.json_schema_extra
    if isinstance(extra, dict) and isinstance(extra.get("shown_default"), str):
        return str(extra["shown_default"])
    value = info.default
    if value is None:
        return None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def description(field: str, info: FieldInfo) -> str:
    if not info.description:
        raise ValueError(f"Settings.{field} has no description: add one with Field(..., description=...)")
    return info.description


def render_table() -> str:
    """The reference table: variable, default, meaning; one row per field, in declaration order."""
    rows = ["| Variable | Default | Meaning |", "| --- | --- | --- |"]
    for field, info in Settings.model_fields.items():
        default = shown_default(info)
        shown = "unset" if default is None else f"`{default}`"
        rows.append(f"| `{env_name(field)}` | {shown} | {description(field, info)} |")
    return "\n".join(rows) + "\n"


def render_env_shared() -> str:
    """The whole of ``.env.shared``: REDIS_URL set for the shared Redis, every other setting commented."""
    lines = [ENV_SHARED_HEADER + f"REDIS_URL={ENV_SHARED_REDIS_URL}", ""]
    for field, info in Settings.model_fields.items():
        if field == "redis_url":
            continue
        text = description(field, info).replace("`", "")
        lines.append(f"# {text}")
        lines.append(f"# {env_name(field)}={shown_default(info) or ''}")
    return "\n".join(lines) + "\n"


def replace_between_markers(text: str, body: str) -> str:
    """``text`` with everything between the README markers replaced by ``body``."""
    start = text.find(README_BEGIN)
    end = text.find(README_END)
    if start < 0 or end < start:
        raise ValueError(f"{TABLE_FILE} needs the lines {README_BEGIN!r} and {README_END!r}, in that order")
    head = text[: start + len(README_BEGIN)]
    return f"{head}\n{body}{text[end:]}"


def rendered_files(root: Path) -> dict[Path, str]:
    """What docs/settings.md and .env.shared under ``root`` should contain."""
    reference = root / TABLE_FILE
    return {
        reference: replace_between_markers(reference.read_text(encoding="utf-8"), render_table()),
        root / ".env.shared": render_env_shared(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scalr_queue._settings_doc", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--check", action="store_true", help="only report files that differ (exit 1)")
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="repository root (default: current directory)")
    args = parser.parse_args(argv)
    try:
        files = rendered_files(args.root)
    except (OSError, ValueError) as exc:
        print(f"settings-docs: {exc}", file=sys.stderr)
        return 2
    stale = [path for path, text in files.items() if not path.is_file() or path.read_text(encoding="utf-8") != text]
    if args.check:
        for path in stale:
            print(f"settings-docs: {path} is out of date; run `make settings-docs`", file=sys.stderr)
        return 1 if stale else 0
    for path in stale:
        path.write_text(files[path], encoding="utf-8")
        print(f"settings-docs: wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
