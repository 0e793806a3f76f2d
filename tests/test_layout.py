"""The house's one rule of direction: the library (``scorer``) never imports the jobs
or the process that wires them; the jobs never import the process."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent
# The composition root and the entry points that start it.
PROCESS = {"scorer/process", "scorer/__main__.py"}


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def _is_process(path: Path) -> bool:
    rel = path.relative_to(ROOT).as_posix()
    return any(rel == p or rel.startswith(p + "/") for p in PROCESS)


def test_the_library_imports_neither_jobs_nor_the_process() -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            name
            for name in _imports(path)
            if name.split(".")[0] == "jobs" or name.startswith("scorer.process")
        )
        for path in (ROOT / "scorer").rglob("*.py")
        if not _is_process(path)
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_jobs_do_not_import_the_process() -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            n for n in _imports(path) if n.startswith("scorer.process")
        )
        for path in (ROOT / "jobs").rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_gunicorn_master_imports_no_feed_or_http_library() -> None:
    probe = (
        "import sys, scorer.process.gunicorn_conf; "
        "print(sorted(m for m in ('feedparser', 'requests', 'sqlalchemy', 'onnxruntime') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_a_read_only_web_process_imports_no_model_library(tmp_path: Path) -> None:
    # The web worker as gunicorn builds it with WEB_ROLE=read, serving a first request:
    # no runtime, tokenizer or model library may be imported (its memory budget).
    probe = (
        "import sys; from webtest import TestApp; from scorer.process.web import build_app; "
        "p = build_app(); app = TestApp(p); "
        "import time; [time.sleep(0.05) for _ in range(200) if p.service is None]; "
        "app.get('/v1/health', expect_errors=True); p.shutdown(); "
        "print(sorted(m for m in ('onnxruntime', 'torch', 'transformers', 'tokenizers', "
        "'exchange_calendars', 'pandas') if m in sys.modules), p.service is not None)"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'read.db'}",
        "WEB_ROLE": "read",
        "RACK_SERVICE_TOKEN": "test-token-0123456789abcdef",
    }
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[] True"


_MUTABLE_CALLS = {"dict", "list", "set", "OrderedDict", "defaultdict", "deque", "Counter"}


def _module_state(path: Path) -> list[str]:
    """Module-level names bound to a mutable container under a variable's (lower-case)
    name, and every ``global`` statement: the state a process object should own."""
    tree = ast.parse(path.read_text(), str(path))
    found = [
        f"{node.lineno}: global {', '.join(node.names)}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Global)
    ]
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        literal = (ast.List, ast.Dict, ast.Set, ast.ListComp, ast.DictComp, ast.SetComp)
        called = isinstance(value, ast.Call) and ast.unparse(value.func).split(".")[-1]
        if isinstance(value, literal) or called in _MUTABLE_CALLS:
            names = [ast.unparse(t) for t in targets]
            found += [f"{node.lineno}: {n}" for n in names if n != "__all__" and not n.isupper()]
    return found


def test_no_module_holds_mutable_state() -> None:
    """Tables of constants are CONSTANT_CASE; what a process holds lives in an object
    (the Service), never in a module global (issue 19)."""
    offenders = {
        str(path.relative_to(ROOT)): found
        for root in ("scorer", "jobs")
        for path in (ROOT / root).rglob("*.py")
        if (found := _module_state(path))
    }
    assert offenders == {}
