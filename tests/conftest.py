"""Shared fixtures: a temporary lrcal home per test, a CLI runner."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

# Fixture modules owned by each layer.
pytest_plugins = [
    f"tests.fixtures.{name}"
    for name in ("sim", "flows", "tui", "stub_endpoint", "gateway")
    if (REPO_ROOT / "tests" / "fixtures" / f"{name}.py").exists()
]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path_factory, monkeypatch):
    """Never touch the real user home; keep torch small on 2 cores."""
    home = tmp_path_factory.mktemp("lrcal-home")
    monkeypatch.setenv("LRCAL_HOME", str(home))
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "1"))
    yield


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny networks: intra-op threads only add contention on a shared 2-core machine."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def home(tmp_path) -> Path:
    """An empty lrcal home, also exported as LRCAL_HOME."""
    path = tmp_path / "home"
    path.mkdir()
    os.environ["LRCAL_HOME"] = str(path)
    return path


@pytest.fixture
def store(home):
    from lrcal.store import Store

    s = Store.open(home)
    yield s
    s.close()


@pytest.fixture
def cli(home):
    """Invoke the CLI in-process: cli("models", "--json") -> click Result."""
    from typer.testing import CliRunner

    from lrcal.cli import app

    runner = CliRunner()

    def invoke(*args: str, input: str | None = None, env: dict | None = None):
        return runner.invoke(app, ["--home", str(home), *args], input=input, env=env, catch_exceptions=False)

    return invoke
