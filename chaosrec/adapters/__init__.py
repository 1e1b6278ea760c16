"""Adapters: everything that touches the outside world, one module per system.

* :mod:`.process`: the one process manager (start, readiness, stop, orphan sweep);
* :mod:`.toxiproxy`: Toxiproxy's API client and a managed server;
* :mod:`.triton`: Triton's model control and readiness;
* :mod:`.gateway`: the recommender gateway's health, metrics and policy;
* :mod:`.tools`: external tools, found or installed (Toxiproxy, Allure, Chromium, the
  Kubernetes control plane and kwok);
* :mod:`.kubernetes`: a local Kubernetes control plane on the process manager, and typed
  views of any cluster's API;
* :mod:`.http`: the pooled HTTP client for control-plane calls;
* :mod:`.ports`: free ports on loopback.

Adapters import only :mod:`chaosrec.core` and :mod:`chaosrec.errors` (and each other
where one system is built on another, e.g. the Toxiproxy server on the process
manager); nothing above them.
"""

__all__: list[str] = []
