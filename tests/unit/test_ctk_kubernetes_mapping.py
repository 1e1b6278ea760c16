"""Unit tests of the MAPPING from chaosrec's faults to chaostoolkit-kubernetes calls.

chaosk8s's functions are replaced by MOCK recorders (``mock_chaosk8s``): these tests
prove which chaosk8s functions are called with which arguments and in which order
(rollbacks included), that the generated activities pass chaoslib's validation against
the real chaosk8s signatures, and that a missing kubeconfig or a forbidden API server
fails before any call. What the calls *do* is tested against a real API server in
``tests/integration/test_kubernetes_faults.py``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from chaosrec.ctk.kubernetes import (
    K8sFault,
    KubernetesFaults,
    check_kube_config,
    parse_kubernetes,
)
from chaosrec.errors import ConfigError, TargetNotAllowedError, UnknownTargetError
from chaosrec.faults.injector import Chaos

SPEC = {
    "namespace": "recsys",
    "replica_label": "chaosrec.io/replica",
    "regions": {
        "region-a": {"deployment": "triton-a", "replicas": 2, "pods": "app=triton,region=a"},
        "region-b": {"deployment": "triton-b", "replicas": 3, "pods": "app=triton,region=b"},
    },
    "gpu_nodes": {"region-a.r0": "gpu-node-a0"},
}


@pytest.fixture
def mock_chaosk8s(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    """MOCK: replaces the chaosk8s functions chaosrec uses by recorders of their calls (and
    the cluster-side fault ledger by no-ops: there is no API server here)."""
    import chaosk8s.deployment.actions as deployment
    import chaosk8s.node.actions as node
    import chaosk8s.pod.actions as pod

    from chaosrec.ctk import kubernetes as k8s_front

    monkeypatch.setattr(k8s_front, "_ledger_api", lambda secrets: None)
    calls: list[tuple[str, dict[str, Any]]] = []
    for module, name in [
        (pod, "terminate_pods"),
        (deployment, "scale_deployment"),
        (node, "cordon_node"),
        (node, "drain_nodes"),
        (node, "uncordon_node"),
    ]:

        def recorder(_name: str = name, **kwargs: Any) -> list[str]:
            calls.append((_name, kwargs))
            return []

        monkeypatch.setattr(module, name, recorder)
    return calls


@pytest.fixture
def kubeconfig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: local\n"
        "clusters: [{name: local, cluster: {server: 'https://127.0.0.1:6443'}}]\n"
        "contexts: [{name: local, context: {cluster: local, user: me}},"
        " {name: prod, context: {cluster: local, user: me}}]\n"
        "users: [{name: me, user: {}}]\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("KUBECONFIG", str(path))
    return path


@pytest.fixture
def no_kubeconfig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    monkeypatch.delenv("CHAOSTOOLKIT_IN_POD", raising=False)
    monkeypatch.delenv("KUBERNETES_HOST", raising=False)


def _faults() -> tuple[KubernetesFaults, Chaos]:
    chaos = Chaos(None)
    return KubernetesFaults(parse_kubernetes(SPEC), chaos), chaos


def test_region_outage_scales_the_region_to_zero_and_back(
    mock_chaosk8s: list[Any], kubeconfig: Path
) -> None:
    k8s, chaos = _faults()
    fault = k8s.inject("region_outage", "region-a", "refuse")
    assert mock_chaosk8s == [
        ("scale_deployment", {"name": "triton-a", "replicas": 0, "ns": "recsys", "secrets": None})
    ]
    chaos.rollback_all()
    assert mock_chaosk8s[-1] == (
        "scale_deployment",
        {"name": "triton-a", "replicas": 2, "ns": "recsys", "secrets": None},
    )
    assert not fault.active


def test_killing_a_region_terminates_its_triton_pods(
    mock_chaosk8s: list[Any], kubeconfig: Path
) -> None:
    k8s, chaos = _faults()
    k8s.inject("region_outage", "region-b", "kill")
    chaos.rollback_all()  # the Deployment heals itself: nothing to call back
    assert mock_chaosk8s == [
        (
            "terminate_pods",
            {
                "label_selector": "app=triton,region=b",
                "all": True,
                "grace_period": -1,
                "ns": "recsys",
                "secrets": None,
            },
        )
    ]


@pytest.mark.parametrize(("fault", "mode"), [("crash", None), ("gpu_loss", "kill")])
def test_a_replica_fault_terminates_that_replicas_pods(
    mock_chaosk8s: list[Any], kubeconfig: Path, fault: str, mode: str | None
) -> None:
    k8s, _ = _faults()
    k8s.inject(fault, "region-a.r1", mode)
    assert mock_chaosk8s == [
        (
            "terminate_pods",
            {
                "label_selector": "chaosrec.io/replica=region-a.r1",
                "all": True,
                "grace_period": 0,
                "ns": "recsys",
                "secrets": None,
            },
        )
    ]


def test_draining_a_gpu_node_cordons_drains_and_uncordons(
    mock_chaosk8s: list[Any], kubeconfig: Path
) -> None:
    k8s, chaos = _faults()
    secrets = {"KUBERNETES_CONTEXT": "prod"}
    k8s.inject("gpu_loss", "region-a.r0", "drain", secrets)
    chaos.rollback_all()
    assert [name for name, _ in mock_chaosk8s] == ["cordon_node", "drain_nodes", "uncordon_node"]
    assert mock_chaosk8s[1][1] == {
        "name": "gpu-node-a0",
        "delete_pods_with_local_storage": True,
        "timeout": 120,
        "secrets": secrets,
    }
    assert mock_chaosk8s[2][1] == {"name": "gpu-node-a0", "secrets": secrets}


def test_a_missing_kubeconfig_fails_before_any_call(
    mock_chaosk8s: list[Any], no_kubeconfig: None
) -> None:
    k8s, chaos = _faults()
    with pytest.raises(ConfigError, match="KUBECONFIG") as excinfo:
        k8s.inject("region_outage", "region-a", "refuse")
    assert "http://localhost" in str(excinfo.value)
    assert mock_chaosk8s == []
    assert chaos.active() == []


def test_kube_config_is_found_in_the_places_chaosk8s_looks(
    no_kubeconfig: None, monkeypatch: pytest.MonkeyPatch, kubeconfig: Path
) -> None:
    assert str(kubeconfig) in check_kube_config()
    monkeypatch.setenv("KUBECONFIG", "/nonexistent")
    assert "KUBERNETES_HOST" in check_kube_config({"KUBERNETES_HOST": "https://k8s:6443"})
    monkeypatch.setenv("CHAOSTOOLKIT_IN_POD", "true")
    assert "service account" in check_kube_config()


@pytest.mark.parametrize(
    ("fault", "target", "mode"),
    [
        ("region_outage", "region-a", "refuse"),
        ("region_outage", "region-b", "kill"),
        ("crash", "region-b.r0", None),
        ("gpu_loss", "region-a.r0", "kill"),
        ("gpu_loss", "region-a.r0", "drain"),
    ],
    ids=["scale-to-zero", "kill-region", "crash", "gpu-kill", "gpu-drain"],
)
def test_generated_activities_validate_against_chaosk8s(
    fault: str, target: str, mode: str | None
) -> None:
    from chaoslib.experiment import ensure_experiment_is_valid

    planned: K8sFault = KubernetesFaults(parse_kubernetes(SPEC)).plan(fault, target, mode)
    experiment = {
        "title": f"{fault} on Kubernetes",
        "description": "generated by chaosrec",
        "method": planned.experiment_activities()["method"],
        "rollbacks": planned.experiment_activities()["rollbacks"],
    }
    ensure_experiment_is_valid(experiment)  # imports chaosk8s and binds every argument
    assert all(a["provider"]["module"].startswith("chaosk8s.") for a in experiment["method"])


@pytest.mark.parametrize(
    ("fault", "target", "mode", "error", "match"),
    [
        ("region_outage", "region-z", "refuse", UnknownTargetError, "region-z"),
        ("region_outage", "region-a", "blackhole", ConfigError, "blackhole"),
        ("gpu_loss", "region-b.r0", "drain", UnknownTargetError, "no GPU node"),
        ("gpu_loss", "nowhere", "kill", UnknownTargetError, "nowhere"),
        ("latency", "region-a", None, ConfigError, "latency"),
    ],
    ids=["unknown-region", "unmapped-mode", "no-gpu-node", "bad-replica", "unmapped-fault"],
)
def test_bad_plans_fail_with_the_allowed_values(
    fault: str, target: str, mode: str | None, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        KubernetesFaults(parse_kubernetes(SPEC)).plan(fault, target, mode)


@pytest.mark.parametrize(
    ("section", "match"),
    [
        ({"regions": SPEC["regions"]}, "namespace"),
        ({"namespace": "x"}, "regions"),
        ({"namespace": "x", "regions": {"a": {"deployment": "d", "pods": "p"}}}, "replicas"),
        ({"namespace": "x", "regions": SPEC["regions"], "nodes": {}}, "nodes"),
    ],
    ids=["no-namespace", "no-regions", "region-missing-key", "unknown-key"],
)
def test_bad_kubernetes_sections_fail(section: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        parse_kubernetes(section, "target.yaml:kubernetes")


def test_a_target_file_on_kubernetes_routes_ctk_actions_to_chaosk8s(
    tmp_path: Path, mock_chaosk8s: list[Any], kubeconfig: Path
) -> None:
    """The target config chooses: with a kubernetes section, inject_region_outage scales
    the Deployment (through the MOCK) instead of touching Toxiproxy."""
    import yaml

    from chaosrec.ctk import actions, context

    target = tmp_path / "target.yaml"
    target.write_text(
        yaml.safe_dump({"gateway_url": "http://recsys.example:8080", "kubernetes": SPEC}),
        encoding="utf-8",
    )
    context.bind(None)
    try:
        with pytest.raises(TargetNotAllowedError, match=r"recsys\.example, which is not loopback"):
            actions.inject_region_outage(
                "region-a", "refuse", configuration={"chaosrec_target": str(target)}
            )
        assert mock_chaosk8s == []  # refused before anything was called
        configuration = {"chaosrec_target": str(target), "chaosrec_allow_hosts": "*.example"}
        done = actions.inject_region_outage("region-a", "refuse", configuration=configuration)
        assert done["label"] == "region_outage(region-a, mode=refuse)"
        assert mock_chaosk8s[0][0] == "scale_deployment"
        assert actions.rollback_all() == ["region_outage(region-a, mode=refuse)"]
        assert mock_chaosk8s[-1][1]["replicas"] == 2
    finally:
        context.bind(None)


def test_an_api_server_off_loopback_is_refused_before_any_call(
    mock_chaosk8s: list[Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "prod-kubeconfig"
    path.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: prod\n"
        "clusters: [{name: prod, cluster: {server: 'https://k8s.prod.example:6443'}}]\n"
        "contexts: [{name: prod, context: {cluster: prod, user: me}}]\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("KUBECONFIG", str(path))
    monkeypatch.delenv("CHAOSREC_ALLOW_HOSTS", raising=False)
    k8s, chaos = _faults()
    with pytest.raises(TargetNotAllowedError, match=r"k8s\.prod\.example"):
        k8s.inject("region_outage", "region-a", "refuse")
    assert mock_chaosk8s == []
    assert chaos.active() == []


def test_a_drain_that_fails_after_the_cordon_still_uncordons(
    mock_chaosk8s: list[Any], kubeconfig: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """chaosk8s's drain raises on a 429 after cordoning: the rollback armed before the
    cordon runs, and the refusal is reported as EvictionBlocked naming the pod."""
    import chaosk8s.node.actions as node
    from chaoslib.exceptions import ActivityFailed

    from chaosrec.errors import EvictionBlocked

    def refused(**kwargs: Any) -> None:
        mock_chaosk8s.append(("drain_nodes", kwargs))
        raise ActivityFailed(
            "Failed to evict pod triton-a-1: {... 'code': 429, 'message': 'Cannot evict pod "
            "as it would violate the pod's disruption budget.'}"
        )

    monkeypatch.setattr(node, "drain_nodes", refused)
    k8s, chaos = _faults()
    with pytest.raises(EvictionBlocked, match="triton-a-1") as excinfo:
        k8s.inject("gpu_loss", "region-a.r0", "drain")
    assert excinfo.value.node == "gpu-node-a0"
    assert [name for name, _ in mock_chaosk8s] == ["cordon_node", "drain_nodes", "uncordon_node"]
    assert chaos.active() == []
