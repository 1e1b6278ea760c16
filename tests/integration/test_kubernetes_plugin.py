"""The plugin's Kubernetes options from the outside (pytester, loaded through the entry
point): the ``kubernetes`` marker is registered, and ``--chaosrec-kubeconfig`` pointing at a
non-loopback API server is refused before any test runs."""

from __future__ import annotations

import pytest

KUBECONFIG = """apiVersion: v1
kind: Config
current-context: prod
clusters: [{name: prod, cluster: {server: "https://k8s.prod.example:6443"}}]
contexts: [{name: prod, context: {cluster: prod, user: me}}]
users: [{name: me, user: {}}]
"""


def test_the_marker_is_registered_and_the_kubeconfig_is_guarded(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("import pytest\n\n@pytest.mark.kubernetes\ndef test_marked():\n    pass\n")
    marked = pytester.runpytest_subprocess("--strict-markers", "-m", "kubernetes")
    marked.assert_outcomes(passed=1)
    kubeconfig = pytester.path / "prod.kubeconfig"
    kubeconfig.write_text(KUBECONFIG)
    refused = pytester.runpytest_subprocess(f"--chaosrec-kubeconfig={kubeconfig}")
    assert refused.ret == pytest.ExitCode.USAGE_ERROR
    refused.stderr.fnmatch_lines(["*k8s.prod.example*not loopback*"])
    allowed = pytester.runpytest_subprocess(
        f"--chaosrec-kubeconfig={kubeconfig}", "--chaosrec-allow-hosts=*.prod.example"
    )
    allowed.assert_outcomes(passed=1)
