"""Triton Python-backend model: the chaosrec reference recommender.

Runs inside Triton's Python-backend stub, not in chaosrec's own process. It
loads the TorchScript recommender (``model.pt`` next to this file) onto the
instance's device (``cuda:N`` for a KIND_GPU instance, else the CPU) and serves
``USER_ID -> ITEM_IDS, SCORES`` for dynamically batched requests.

Emulated GPU faults: on a machine without CUDA there is no device to lose, so
chaosrec emulates faults at the device boundary. Before each batch reaches the
device, this model reads the replica's fault file (path in the ``FAULT_FILE``
parameter; re-read only when its mtime changes) and, while a fault is active,
fails the device call exactly as PyTorch does when the device fails: the
request gets a Triton error carrying PyTorch's CUDA error text. Modes:

* ``{"device_lost": true}``  every batch fails ("CUDA error: device lost");
* ``{"oom_rate": 0.3}``       that share of requests fails with "CUDA out of memory";
  with real CUDA present, a burst also allocates device memory until the
  allocator really raises;
* ``{"slowdown": 4.0}``       every batch takes 4x its measured compute time.
"""

import contextlib
import json
import os
import random
import time

# Loading is seconds of CPU (importing torch above all) that must not starve the
# replicas serving next to this one on the same cores, whether this stub belongs to a
# restarted replica or to a hot model update: it runs 10 nice steps lower until
# initialize() has warmed the model up, then back at the priority it started with
# (raising it again needs root or CAP_SYS_NICE; without them it stays lower).
_START_PRIORITY = os.getpriority(os.PRIO_PROCESS, 0)
with contextlib.suppress(OSError):
    os.nice(10)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import triton_python_backend_utils as pb_utils  # noqa: E402


def _restore_priority():
    try:
        tids = os.listdir("/proc/self/task")  # a nice value is per thread on Linux
    except OSError:
        tids = [0]
    for tid in tids:
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, int(tid), _START_PRIORITY)


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        params = {k: v.get("string_value", "") for k, v in config.get("parameters", {}).items()}
        version_dir = os.path.join(args["model_repository"], args["model_version"])
        if args.get("model_instance_kind") == "GPU" and torch.cuda.is_available():
            self.device = torch.device(f"cuda:{int(args.get('model_instance_device_id', 0))}")
        else:
            self.device = torch.device("cpu")
        torch.set_num_threads(int(params.get("TORCH_THREADS", "1") or 1))
        self.model = torch.jit.load(os.path.join(version_dir, "model.pt"), map_location=self.device)
        self.model.eval()
        self.fault_file = params.get("FAULT_FILE") or None
        self._fault_mtime = None
        self.fault = {}
        self._rng = random.Random(0)
        self._hog = []
        with torch.inference_mode():  # warm-up so the first real request is not slow
            self.model(torch.zeros(1, dtype=torch.int64, device=self.device))
        _restore_priority()

    def _refresh_fault(self):
        if self.fault_file is None:
            return
        try:
            mtime = os.stat(self.fault_file).st_mtime_ns
        except FileNotFoundError:
            self._fault_mtime, self.fault = None, {}
            return
        if mtime != self._fault_mtime:
            try:
                with open(self.fault_file, encoding="utf-8") as fh:
                    self.fault = json.load(fh) or {}
            except (OSError, ValueError):
                return  # a half-written file: keep the previous state until the next batch
            self._fault_mtime = mtime
            if not self.fault.get("oom_rate"):
                self._hog.clear()

    def execute(self, requests):
        self._refresh_fault()
        fault = self.fault
        if fault.get("device_lost"):
            msg = (
                "CUDA error: device lost (chaosrec emulated GPU loss: "
                "the device call failed at the device boundary)"
            )
            return [pb_utils.InferenceResponse(error=pb_utils.TritonError(msg)) for _ in requests]

        oom_rate = float(fault.get("oom_rate", 0.0))
        keep, responses = [], [None] * len(requests)
        for i, _request in enumerate(requests):
            if oom_rate > 0 and self._rng.random() < oom_rate:
                responses[i] = pb_utils.InferenceResponse(
                    error=pb_utils.TritonError(self._oom_message())
                )
            else:
                keep.append(i)
        if keep:
            ids = np.concatenate(
                [
                    pb_utils.get_input_tensor_by_name(requests[i], "USER_ID").as_numpy().reshape(-1)
                    for i in keep
                ]
            )
            started = time.perf_counter()
            with torch.inference_mode():
                items, scores = self.model(torch.from_numpy(ids.astype(np.int64)).to(self.device))
            items = items.cpu().numpy().astype(np.int64)
            scores = scores.cpu().numpy().astype(np.float32)
            slowdown = float(fault.get("slowdown", 1.0))
            if slowdown > 1.0:
                time.sleep(
                    (time.perf_counter() - started) * (slowdown - 1.0)
                    + float(fault.get("slowdown_floor_ms", 0.0)) / 1000.0
                )
            offset = 0
            for i in keep:
                n = (
                    pb_utils.get_input_tensor_by_name(requests[i], "USER_ID")
                    .as_numpy()
                    .reshape(-1)
                    .shape[0]
                )
                responses[i] = pb_utils.InferenceResponse(
                    [
                        pb_utils.Tensor("ITEM_IDS", items[offset : offset + n]),
                        pb_utils.Tensor("SCORES", scores[offset : offset + n]),
                    ]
                )
                offset += n
        return responses

    def _oom_message(self):
        if self.device.type == "cuda":
            try:  # with a real device, really exhaust its memory for the burst
                while True:
                    self._hog.append(
                        torch.empty(256 * 1024 * 1024, dtype=torch.uint8, device=self.device)
                    )
            except torch.cuda.OutOfMemoryError as err:
                self._hog.clear()
                return f"CUDA out of memory: {err}"
        return (
            "CUDA out of memory. Tried to allocate 2.00 GiB "
            "(chaosrec emulated OOM at the device boundary)"
        )

    def finalize(self):
        self._hog.clear()
