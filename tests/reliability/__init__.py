# Copyright (c) 2026 Seg4Reg+ bundle authors. Licensed under the Apache License, Version 2.0.
"""The reliability table (docs/reliability.md): each case run at the level a user meets it.

Helpers shared by its tests: a bundle command in a subprocess, a workflow run in-process that gives the one line the
command would end with (``ERROR: ...``), and a snapshot of a folder to show that nothing already written changed.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

from monai.bundle import ConfigWorkflow

from scripts.errors import DEBUG_VARIABLE, explained_error

__all__ = ["REPO", "bundle_command", "error_line", "snapshot"]

REPO = Path(__file__).resolve().parents[2]


def bundle_command(*args: str, **env_vars: str) -> subprocess.CompletedProcess:
    """``python -m monai.bundle <args>`` as a user types it, on the CPU; ``.log`` holds stdout and stderr together."""
    env = {key: value for key, value in os.environ.items() if key != "SEG4REG_DEBUG"}
    env.update({"CUDA_VISIBLE_DEVICES": "", "PYTHONUNBUFFERED": "1", **env_vars})
    result = subprocess.run(
        [sys.executable, "-m", "monai.bundle", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )
    result.log = result.stdout + result.stderr
    return result


def error_line(workflow: ConfigWorkflow) -> str:
    """Run ``workflow`` and give the one line its command would end with (``scripts.errors``'s hook prints it).

    Raises:
        AssertionError: when the run succeeds, or fails with an error the hook would show as a traceback (a bug).
    """
    try:
        workflow.run()
    except Exception as error:  # what `python -m monai.bundle run` would let reach the hook
        explained = explained_error(error)
        assert explained is not None, f"would end in a traceback: {error!r}"
        return f"ERROR: {explained} (set {DEBUG_VARIABLE}=1 for the traceback)"
    raise AssertionError("the run succeeded")


def snapshot(folder: Path) -> dict[str, tuple[int, str]]:
    """``{relative path: (mtime_ns, sha1 of the content)}`` of every file under ``folder``."""
    return {
        str(path.relative_to(folder)): (path.stat().st_mtime_ns, hashlib.sha1(path.read_bytes()).hexdigest())
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }
