"""Benchmark the reference recommender: training time, quality, TorchScript latency.

Trains the ``good`` and ``bad`` variants from scratch (no artifact cache), scores
them and the popularity baseline on the held-out split, then times the saved
TorchScript module on batches of 64 users (median and p95 over 200 runs, after
20 warm-up runs) for each requested torch thread count.

Usage::

    python bench/bench_model.py [--seed 7] [--threads 1 2] [--runs 200]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from chaosrec.model import evaluate, generate_catalog, train_model
from chaosrec.model._torchscript import load, save_canonical, script

BATCH = 64
WARMUP = 20


def _latency_ms(module: torch.jit.ScriptModule, threads: int, runs: int) -> tuple[float, float]:
    """(median, p95) wall-clock ms of one forward on a batch of 64 ``[B, 1]`` user ids."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    ids = torch.arange(BATCH, dtype=torch.int64).reshape(BATCH, 1)
    samples = []
    try:
        with torch.inference_mode():
            for _ in range(WARMUP):
                module(ids)
            for run in range(runs):
                batch = (ids + run * BATCH) % 5_000
                started = time.perf_counter()
                module(batch)
                samples.append((time.perf_counter() - started) * 1e3)
    finally:
        torch.set_num_threads(previous)
    samples.sort()
    return statistics.median(samples), samples[int(0.95 * (len(samples) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()

    started = time.perf_counter()
    catalog = generate_catalog(args.seed)
    print(
        f"catalog: {catalog.n_users} users, {catalog.n_items} items, "
        f"{catalog.train_indices.size} train / {catalog.test_indices.size} test interactions, "
        f"generated in {time.perf_counter() - started:.2f} s"
    )

    rows = {}
    modules = {}
    for variant in ("good", "bad"):
        trained = train_model(catalog, variant)
        print(
            f"train {variant:4}: {trained.train_seconds:6.2f} s on {trained.device} "
            f"({torch.get_num_threads()} threads available)"
        )
        result = evaluate(trained, catalog)
        rows[variant] = result["model"]
        rows.setdefault("popularity", result["popularity"])
        modules[variant] = trained.module

    print(f"\n{'':12}{'recall@10':>10}{'ndcg@10':>10}{'precision@10':>14}{'f1@10':>8}")
    for name, label in (("good", "model"), ("popularity", "popularity"), ("bad", "bad")):
        m = rows[name]
        print(
            f"{label:12}{m['recall@10']:>10.4f}{m['ndcg@10']:>10.4f}"
            f"{m['precision@10']:>14.4f}{m['f1@10']:>8.4f}"
        )
    lift = rows["good"]["recall@10"] / rows["popularity"]["recall@10"]
    print(f"recall@10 lift over popularity: {lift:.2f}x")

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.pt"
        save_canonical(script(modules["good"]), path)
        size_mb = path.stat().st_size / 1e6
        module = load(path)
        print(f"\nTorchScript model.pt: {size_mb:.1f} MB; batch {BATCH}, {args.runs} runs")
        for threads in args.threads:
            median, p95 = _latency_ms(module, threads, args.runs)
            print(f"  {threads} thread(s): median {median:.2f} ms, p95 {p95:.2f} ms")


if __name__ == "__main__":
    main()
