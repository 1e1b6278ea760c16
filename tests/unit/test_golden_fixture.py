from __future__ import annotations

import json
from pathlib import Path

from chaosrec.target import Golden

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "golden" / "recsys.json"


def test_golden_fixture_matches_the_reference_model() -> None:
    """The committed golden request set is the one the cached reference model carries."""
    from chaosrec.model import ensure_model

    data = json.loads(FIXTURE.read_text())
    artifact = ensure_model("good")
    golden = artifact.golden
    assert data["model_version"] == artifact.version
    assert data["user_ids"] == [int(u) for u in golden.user_ids]
    assert data["relevant"] == [[int(i) for i in r] for r in golden.relevant]
    assert len(Golden.from_file(FIXTURE).user_ids) == len(data["user_ids"]) >= 500
