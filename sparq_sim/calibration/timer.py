"""CalibratedTimer: phases timed with fitted implementation constants (``--timing calibrated``).

The constants come from this device's own calibration file, or its kind's, applied with the
device's own physics (``sparq_sim.calibration.store``). The whole list of phases is treated as one call: host
issue time and device time overlap (sparq_sim.calibration.model); the part of the host time not
hidden behind device work is reported as overhead of the phases, in proportion to their launches.
"""

from __future__ import annotations

import numpy as np

from sparq_sim.calibration import model, store
from sparq_sim.errors import UserError
from sparq_sim.timing.result import PhaseTime, classify


class CalibratedTimer:
    name = "calibrated"

    def __init__(self, device, calibration=None, threads: int | None = None, params: dict | None = None,
                 cuda_graph: bool = False):
        self.device = device
        if params is not None:
            self.params, self.source = dict(params), "given constants"
        else:
            self.params, self.source = store.constants_for(device, calibration)
        self.threads = threads
        if cuda_graph:
            # one replayed graph per call: no host dispatch per kernel, each kernel costs the
            # device's graph_kernel_s instead of a launch
            if device.graph_kernel_s is None:
                raise UserError(f"{device.name} has no CUDA graphs (no overheads.graph_kernel_s)")
            self.params = {**self.params, "host_ops_per_launch": 0.0,
                           "launch_factor": device.graph_kernel_s.value / device.launch_s.value}
            self.source += "; replayed as one CUDA graph"

    def time_phases(self, phases) -> list[PhaseTime]:
        phases = list(phases)
        if not phases:
            return []
        d = self.device
        threads = None
        if d.kind == "cpu":
            threads = [self.threads or int(d.compute_units.value)]
        f = model.features([phases], d.granularity, None, threads, whole_sparse_rows=d.kind == "cpu")
        T, parts = model.evaluate(f, self.params, d, breakdown=True)
        total = float(T[0])
        dev = parts["device"]
        extra = max(0.0, total - float(dev.sum()))
        launches = f.launches
        weights = launches / launches.sum() if launches.sum() > 0 else np.full(len(phases), 1.0 / len(phases))
        out = []
        for i, p in enumerate(phases):
            memory = float(max(parts["memory"][i], parts["scattered"][i], parts["topk"][i]))
            compute = float(parts["compute"][i])
            overhead = float(dev[i] - max(memory, compute)) + extra * float(weights[i])
            requested = p.requested_bytes()
            out.append(PhaseTime(p.name, p.part, requested, p.moved_bytes(d.granularity),
                                 requested if p.in_formula else 0.0, memory, compute, overhead,
                                 max(memory, compute) + overhead, classify(memory, compute, overhead)))
        return out
