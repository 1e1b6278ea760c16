"""The committed golden request set is derived from the synthetic catalog alone.

It holds only what is the same on every machine: users drawn from the seed and
their held-out items (integers from numpy's seeded generator). Trained weights,
and so the model version, are deliberately not in it (see the README's "The
reference model").
"""

from __future__ import annotations

import json
from pathlib import Path

from chaosrec.drill.target import Golden
from chaosrec.model import generate_catalog, golden_user_ids

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "golden" / "recsys.json"


def test_golden_fixture_is_the_reference_catalogs_golden_set() -> None:
    data = json.loads(FIXTURE.read_text())
    catalog = generate_catalog()  # seed 7, the reference sizes (~2 s)
    users = golden_user_ids(catalog)
    assert data["user_ids"] == users.tolist()
    assert data["relevant"] == [catalog.test_items(int(u)).tolist() for u in users]
    assert data["k"] == 10
    assert "model_version" not in data  # machine-specific bits stay out of fixtures
    assert len(Golden.from_file(FIXTURE).user_ids) == len(data["user_ids"]) == 500
