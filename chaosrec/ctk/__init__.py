"""chaosrec as a Chaos Toolkit extension: actions, probes and controls over chaosrec's faults.

Needs the ``ctk`` extra (``pip install 'chaosrec[ctk]'``); importing chaosrec never imports it.

* :mod:`chaosrec.ctk.actions`: verbs that inject faults (``inject_region_outage``, ...),
  start load, and ``rollback_all``;
* :mod:`chaosrec.ctk.probes`: what they measure (``availability``, ``latency_p99_ms``,
  ``recall_at_10``, ``load_verdict``, ...);
* :mod:`chaosrec.ctk.control`: target checks, guardrails, rollback whatever happens;
* :mod:`chaosrec.ctk.kubernetes`: the same faults as chaostoolkit-kubernetes activities;
* :mod:`chaosrec.ctk.runner`: run experiments in process (pytest uses it).

``chaos discover --no-install chaosrec`` lists the actions and probes with their
arguments and docs (through :func:`discover`).
"""

from __future__ import annotations

from typing import Any

__all__ = ["discover"]


def discover(discover_system: bool = True) -> dict[str, Any]:
    """Chaos Toolkit discovery: chaosrec's actions and probes (and, with
    ``discover_system``, the stack ``chaosrec stack up`` started, when one is running)."""
    from chaosrec.core.extras import require

    require("chaoslib", extra="ctk", feature="Chaos Toolkit discovery")
    from chaoslib.discovery.discover import (
        discover_actions,
        discover_probes,
        initialize_discovery_result,
    )

    import chaosrec

    result: dict[str, Any] = initialize_discovery_result("chaosrec", chaosrec.__version__, "recsys")
    result["activities"].extend(discover_actions("chaosrec.ctk.actions"))
    result["activities"].extend(discover_probes("chaosrec.ctk.probes"))
    if discover_system:
        import json

        from chaosrec.core.paths import stacks_dir

        state = stacks_dir() / "default" / "state.json"
        try:
            data = json.loads(state.read_text(encoding="utf-8"))
            result["system"] = {
                "stack": "default",
                "status": data.get("status"),
                "gateway_url": data.get("gateway", {}).get("url"),
                "toxiproxy_url": data.get("toxiproxy", {}).get("api_url"),
                "topology": data.get("topology"),
            }
        except (OSError, ValueError):
            result["system"] = None
    return result
