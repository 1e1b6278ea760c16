"""The Kubernetes build recipe: which staging modules are pinned to which release."""

from __future__ import annotations

import pytest

from chaosrec.adapters.tools.kubernetes import staging_replacements
from chaosrec.errors import SetupError

GO_MOD = """module k8s.io/kubernetes

go 1.22.0

require (
\tk8s.io/api v0.0.0
)

replace (
\tk8s.io/api => ./staging/src/k8s.io/api
\tk8s.io/client-go => ./staging/src/k8s.io/client-go
)
"""


def test_each_staging_module_is_pinned_to_the_matching_v0_release() -> None:
    assert staging_replacements(GO_MOD, "1.31.4") == [
        "k8s.io/api => k8s.io/api v0.31.4",
        "k8s.io/client-go => k8s.io/client-go v0.31.4",
    ]


@pytest.mark.parametrize(
    ("go_mod", "version", "match"),
    [("module x\n", "1.31.4", "no `k8s.io"), (GO_MOD, "2.0.0", "only 1.x")],
    ids=["no-replace-block", "not-1.x"],
)
def test_bad_inputs_fail_with_one_line(go_mod: str, version: str, match: str) -> None:
    with pytest.raises(SetupError, match=match):
        staging_replacements(go_mod, version)
