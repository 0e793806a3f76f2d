"""The files Heroku reads agree with each other and with the runbook."""

from __future__ import annotations

import os
import re
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_runtime_txt_and_python_version_name_the_same_python() -> None:
    runtime = (ROOT / "runtime.txt").read_text().strip()
    pinned = (ROOT / ".python-version").read_text().strip()
    match = re.fullmatch(r"python-(3\.11\.\d+)", runtime)
    assert match, runtime
    assert pinned == match.group(1)


def test_the_procfile_releases_with_alembic_and_serves_with_gunicorn() -> None:
    procfile = dict(
        line.split(":", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line
    )
    assert procfile["release"].strip() == "alembic upgrade head"
    assert procfile["web"].strip().startswith("gunicorn -c python:scorer.process.gunicorn_conf")


def test_the_build_hooks_are_executable_and_drop_only_build_dependencies() -> None:
    hook = ROOT / "bin" / "post_compile"
    assert os.access(hook, os.X_OK) and os.access(ROOT / "bin" / "slug-size", os.X_OK)
    text = hook.read_text()
    assert text.index("prepare-model") < text.index("pip uninstall")
    assert "pip uninstall --yes --quiet torch transformers" in text
