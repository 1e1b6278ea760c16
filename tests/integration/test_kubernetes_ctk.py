"""Chaos Toolkit experiments against a REAL API server through a target file: ``chaos run``
in a child process and chaosrec's in-process runner (as pytest runs experiments), the
steady state read from the Kubernetes API, a guardrail on the cluster's available pods
aborting the run and rolling the fault back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes_reference import DEPLOY, NS, all_available, deploy_reference

from chaosrec.drill.cluster import KubeCluster
from chaosrec.errors import GuardrailTripped

pytestmark = pytest.mark.kubernetes

EXPERIMENTS = DEPLOY / "experiments"
TARGET = DEPLOY / "local" / "target.yaml"


@pytest.fixture(scope="module")
def reference(kube_cluster: KubeCluster) -> KubeCluster:
    deploy_reference(kube_cluster)
    return kube_cluster


@pytest.fixture
def on_cluster(reference: KubeCluster, monkeypatch: pytest.MonkeyPatch) -> Iterator[KubeCluster]:
    for key, value in reference.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("CHAOSREC_TARGET", str(TARGET))
    yield reference
    all_available(reference)


def test_chaos_run_scales_a_region_to_zero_and_back(
    on_cluster: KubeCluster, tmp_path: Path
) -> None:
    journal = tmp_path / "journal.json"
    chaos = Path(sys.executable).with_name("chaos")
    result = subprocess.run(
        [str(chaos), "--no-version-check", "--no-log-file", "run", "--rollback-strategy=always",
         "--journal-path", str(journal), str(EXPERIMENTS / "region-outage.yaml")],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}, cwd=tmp_path,
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    data = json.loads(journal.read_text())
    assert data["status"] == "completed" and not data["deviated"]
    during = next(r for r in data["run"] if r["activity"]["name"].startswith("region-a-available"))
    assert during["output"] == 0.0  # region-a had no pod available while out
    assert [r["status"] for r in data["rollbacks"]] == ["succeeded"]
    assert on_cluster.api.deployment(NS, "triton-region-a").desired == 2


def test_a_guardrail_on_the_clusters_pods_aborts_and_rolls_back(on_cluster: KubeCluster) -> None:
    from chaosrec.ctk import runner

    journal = runner.run(EXPERIMENTS / "region-outage-guardrail.yaml")
    with pytest.raises(GuardrailTripped, match="availability_below"):
        runner.check_journal(journal, "region-outage-guardrail")
    assert journal["chaosrec"]["guardrail"]["value"] == pytest.approx(0.5)
    assert on_cluster.api.deployment(NS, "triton-region-a").desired == 2
