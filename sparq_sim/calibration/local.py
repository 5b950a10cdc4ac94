"""This machine as a Device, for ``validate --local``.

Preference order: the simulator's measured local profile (``--hw local``) when the hardware
library has one, with its bandwidth replaced by the one a calibration was fitted with when that
is given (the constants are relative to it; this VM's bandwidth drifts between days); otherwise
this machine's hardware data (sparq_sim.hardware.local) with a measured read bandwidth: the one
given, else the one stored with the local calibration, else ``measure()`` (the caller's: the
kernels' stream measurement, ``sparq_sim.kernels.timing.read_bandwidth``). The measured bandwidth
is stored with the local calibration, so predictions made with that calibration reuse the
bandwidth it was fitted with.
"""

from __future__ import annotations

import time
from functools import lru_cache

from sparq_sim.errors import UserError
from sparq_sim.machine import cores, cpu_model

# the fp32 rate the stored local calibration's constants were fitted against
ASSUMED_PEAK_HZ, ASSUMED_FLOP_PER_CYCLE = 2.45e9, 32


@lru_cache(maxsize=None)
def local_device(bandwidth_Bps: float | None = None, source: str = "", measure=None):
    """The local CPU as a Device; `bandwidth_Bps` (from a calibration file) skips the measurement,
    `measure()` -> (bytes/s, how) is called where neither it nor a stored figure is known."""
    from dataclasses import replace

    from sparq_sim.hardware import load_device
    from sparq_sim.hardware.local import machine_data, machine_device
    from sparq_sim.schema import Figure
    try:
        profile = load_device("local")
    except UserError:
        profile = None
    if profile is not None:
        if bandwidth_Bps is None:
            return profile
        # a calibration's constants are relative to the bandwidth measured with it: use that figure
        return replace(profile, bandwidth_Bps=Figure(float(bandwidth_Bps), "measured", source or "measured"))
    if bandwidth_Bps is None:
        stored = _stored_bandwidth()
        if stored is not None:
            bandwidth_Bps, source = stored
        elif measure is not None:
            bandwidth_Bps, source = measure()
        else:
            raise UserError("this machine's read bandwidth is unknown: run `sparq-sim validate --local --calibrate` "
                            "or `sparq-sim measure`")
    n = cores()
    peak = Figure(n * ASSUMED_PEAK_HZ * ASSUMED_FLOP_PER_CYCLE, "assumed",
                  f"cores x {ASSUMED_PEAK_HZ / 1e9:.2f} GHz x {ASSUMED_FLOP_PER_CYCLE} fp32 flop/cycle (Zen 3 class)")
    data = machine_data(cores=n, date=time.strftime("%Y-%m-%d"), peak=peak,
                        bandwidth=Figure(float(bandwidth_Bps), "measured", source or "measured read bandwidth"))
    return machine_device(data, "(built by sparq_sim.calibration.local)")


def _stored_bandwidth():
    from sparq_sim.calibration import store
    path = store.HERE / "local-cpu.toml"
    if not path.is_file():
        return None
    cal = store.load(path)
    if cal.get("meta", {}).get("cpu_model") != cpu_model():
        return None
    return float(cal["bandwidth_Bps"]), str(cal.get("meta", {}).get("bandwidth_source", "stored calibration"))
