"""The model id a score event records: a hub id as configured, a local directory by
its name (stable wherever the directory sits, and no filesystem path in the data)."""

from __future__ import annotations

from pathlib import Path

import pytest

from scorer.scoring.model.base import model_id_of


@pytest.mark.parametrize(
    ("source", "recorded"),
    [
        ("ProsusAI/finbert", "ProsusAI/finbert"),
        ("bert-base-uncased", "bert-base-uncased"),
        ("../shared/models/finsent-minilm", "finsent-minilm"),
        ("/app/models/finsent-minilm/", "finsent-minilm"),
        ("./finsent", "finsent"),
        ("~/models/finsent", "finsent"),
    ],
)
def test_hub_ids_stay_and_paths_become_the_directorys_name(source: str, recorded: str) -> None:
    assert model_id_of(source) == recorded


def test_an_existing_relative_directory_is_local_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "models" / "mine").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert model_id_of("models/mine") == "mine"
    assert model_id_of("models/elsewhere") == "models/elsewhere", "org/name: a hub id"
