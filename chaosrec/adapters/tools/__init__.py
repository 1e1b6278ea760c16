"""The external tools chaosrec drives: found, or installed from the registries this
project may use, into chaosrec's tools folder (:func:`chaosrec.core.paths.tools_dir`).

One module per tool (:mod:`.toxiproxy`, :mod:`.allure`, :mod:`.chromium`,
:mod:`.kubernetes`), on shared helpers (:mod:`._run`: run with a deadline and the output's
tail, version probes, ``$X_BIN`` overrides).
"""

from chaosrec.adapters.tools._run import run_tool
from chaosrec.adapters.tools.allure import (
    ALLURE_VERSION,
    allure_version,
    find_allure,
    install_allure,
)
from chaosrec.adapters.tools.chromium import find_chromium, install_chromium
from chaosrec.adapters.tools.kubernetes import (
    KUBERNETES_VERSION,
    KWOK_VERSION,
    KubernetesBinaries,
    ensure_kubernetes,
)
from chaosrec.adapters.tools.toxiproxy import (
    TOXIPROXY_MODULE,
    TOXIPROXY_VERSION,
    ensure_toxiproxy,
    find_toxiproxy,
    install_toxiproxy,
    toxiproxy_version,
)
from chaosrec.core.paths import tools_dir

__all__ = [
    "ALLURE_VERSION",
    "KUBERNETES_VERSION",
    "KWOK_VERSION",
    "TOXIPROXY_MODULE",
    "TOXIPROXY_VERSION",
    "KubernetesBinaries",
    "allure_version",
    "ensure_kubernetes",
    "ensure_toxiproxy",
    "find_allure",
    "find_chromium",
    "find_toxiproxy",
    "install_allure",
    "install_chromium",
    "install_toxiproxy",
    "run_tool",
    "tools_dir",
    "toxiproxy_version",
]
