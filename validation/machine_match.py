"""Whether a stored local calibration was fitted on this machine (``validate --local`` reuses it
only then, and calibrates afresh otherwise)."""

from __future__ import annotations

BANDWIDTH_TOLERANCE = 0.25  # a stored calibration is reused while this machine reads within 25% of its bandwidth


def machine_facts() -> dict:
    """What identifies the machine a local calibration was fitted on, as stored in its [meta]."""
    from sparq_sim.machine import cores, cpu_model, llc_bytes
    return {"cpu_model": cpu_model(), "cores": cores(), "llc_bytes": llc_bytes()}


def calibration_mismatch(cal: dict, facts: dict, measure_bandwidth) -> list[str]:
    """Why the calibration `cal` was not fitted on this machine (empty list: it was).

    CPU model, cores and LLC size must equal this machine's (`facts`, as
    ``machine_facts`` gives them; a calibration that does not record one cannot be matched), and
    the read bandwidth measured now (``measure_bandwidth()``, called only when the rest match) must
    lie within BANDWIDTH_TOLERANCE of the one it was fitted with: the same CPU model string on a
    different host, or the same VM on a slower day, gives other constants.
    """
    meta = cal.get("meta", {}) or {}
    reasons = []
    for key, what in (("cpu_model", "CPU"), ("cores", "cores"), ("llc_bytes", "last-level cache bytes")):
        if key not in meta:
            reasons.append(f"it does not record the {what} it was fitted with")
        elif str(meta[key]) != str(facts[key]):
            reasons.append(f"fitted with {what} {meta[key]}, this run has {facts[key]}")
    if reasons:
        return reasons
    stored = float(cal["bandwidth_Bps"])
    now = float(measure_bandwidth())
    if abs(now / stored - 1) > BANDWIDTH_TOLERANCE:
        reasons.append(f"fitted at {stored / 1e9:.1f} GB/s read bandwidth, this machine reads "
                       f"{now / 1e9:.1f} GB/s now (more than {BANDWIDTH_TOLERANCE:.0%} apart)")
    return reasons
