"""Through the web stack: the template backend's enqueue route against its no-op route."""

from __future__ import annotations

from typing import Any

from bench._systems import ROOT


def run(plan: Any) -> dict[str, Any]:
    backend = ROOT / "template-app" / "backend"
    if not (backend / "src" / "main.py").exists():
        return {"skipped": "template-app/backend/src/main.py does not exist yet"}
    return {"skipped": "not implemented yet"}
