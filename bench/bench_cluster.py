"""Figures of the local Kubernetes control plane and of the cluster-scale GPU DR drill.

* cold starts of the control plane (binaries built: PKI, etcd, kube-apiserver /readyz,
  controllers, scheduler, kwok, 3 nodes Ready, the default service account), and the
  resident memory of each process;
* ``--runs`` runs of "lose region-a's GPU node pool" on a 3 x 20 x 8 GPU fleet with 40
  two-GPU Triton pods per region: when Kubernetes noticed (the pod garbage collector),
  time until every pod runs again (RTO), pending pods; then the capacity-short variant
  (30 three-GPU pods per region): how many stay Pending.

    python bench/bench_cluster.py [--runs 5] [--starts 3] [--chart capacity.png]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from chaosrec.adapters.kubernetes.api import KubeAPI
from chaosrec.adapters.kubernetes.cluster import LocalCluster
from chaosrec.adapters.tools.kubernetes import ensure_kubernetes
from chaosrec.drill.capacity import CapacityRecorder, GpuFleet
from chaosrec.slo.capacity import CapacityTimeline, summarize


def region_loss(
    api: KubeAPI, name: str, pods: int, gpus_per_pod: int, *, fits: bool
) -> CapacityTimeline:
    fleet = GpuFleet(name, pods=pods, gpus_per_pod=gpus_per_pod)
    fleet.create(api)
    try:
        fleet.wait_available(api)
        with CapacityRecorder(api, fleet.namespace) as recorder:
            recorder.sample()
            recorder.fault_started("region-a GPU node pool deleted")
            fleet.delete_region_nodes(api, "region-a")
            api.wait(lambda: not recorder.timeline().samples[-1].full, 120, "loss noticed")
            if fits:
                recorder.wait_full(240)
            else:  # settled: every pod Ready or Pending for lack of GPUs

                def settled() -> bool:
                    pending = api.pending(fleet.namespace)
                    ready = sum(r.pods_ready for r in api.capacity(fleet.namespace))
                    gpus = all("Insufficient nvidia.com/gpu" in p.reason for p in pending)
                    return bool(pending) and gpus and ready + len(pending) == 3 * pods

                api.wait(settled, 240, "settled")
        return recorder.timeline()
    finally:
        fleet.delete(api)
        api.wait(
            lambda: not api.core.list_node(label_selector=f"chaosrec.io/fleet={name}").items,
            60,
            "fleet nodes gone",
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--starts", type=int, default=3)
    parser.add_argument("--chart", type=Path, default=None)
    args = parser.parse_args()
    binaries = ensure_kubernetes()
    starts = []
    for _ in range(args.starts):
        with LocalCluster(binaries, Path(tempfile.mkdtemp(prefix="chaosrec-bench-"))) as c:
            starts.append(c.startup_s or 0)
    print(f"control plane cold start (binaries built), {args.starts} starts: "
          f"{json.dumps(summarize(starts))}")  # fmt: skip
    with LocalCluster(binaries, Path(tempfile.mkdtemp(prefix="chaosrec-bench-"))) as cluster:
        api = KubeAPI.from_kubeconfig(cluster.kubeconfig)
        idle = {p["name"]: p["rss_mib"] for p in cluster.describe()["processes"]}
        print(f"resident memory at idle, MiB: {json.dumps(idle)} (total {sum(idle.values()):.0f})")
        rtos, noticed, pending = [], [], []
        timeline = None
        for run in range(args.runs):
            timeline = region_loss(api, f"b{run}", pods=40, gpus_per_pod=2, fits=True)
            rto = timeline.rto_s()
            impaired = timeline.impaired_at_s()
            rtos.append(rto if rto is not None else float("nan"))
            noticed.append((impaired or 0) - (timeline.fault_start_s or 0))
            pending.append(timeline.pending_max())
            print(f"run {run + 1}: noticed after {noticed[-1]:.1f} s, RTO {rto:.1f} s, "
                  f"pending max {pending[-1]}")  # fmt: skip
        loaded = {p["name"]: p["rss_mib"] for p in cluster.describe()["processes"]}
        print(f"resident memory after the runs, MiB: {json.dumps(loaded)}")
        print(f"region loss, {args.runs} runs: RTO s {json.dumps(summarize(rtos))}; "
              f"noticed after s {json.dumps(summarize(noticed))}")  # fmt: skip
        short = region_loss(api, "bshort", pods=30, gpus_per_pod=3, fits=False)
        print(f"capacity short (30 x 3-GPU pods per region): pending at end "
              f"{short.pending_at_end()}, RTO {short.rto_s()}")  # fmt: skip
        if args.chart is not None and timeline is not None:
            from chaosrec.reporting.charts import capacity_png

            args.chart.write_bytes(capacity_png(timeline, title="region-a GPU pool lost"))
            print(f"chart: {args.chart}")
        api.close()


if __name__ == "__main__":
    main()
