"""sparq_sim.machine: the /proc readers behind memory size and huge-page accounting."""

import pytest

from sparq_sim import machine


def test_proc_kb_field_reads_the_key_in_bytes(tmp_path):
    f = tmp_path / "meminfo"
    f.write_text("MemTotal:       24683020 kB\nAnonHugePages:    2048 kB\n")
    assert machine._proc_kb_field(str(f), "MemTotal") == 24683020 * 1024
    assert machine._proc_kb_field(str(f), "AnonHugePages") == 2048 * 1024
    assert machine._proc_kb_field(str(f), "Missing") is None
    assert machine._proc_kb_field(str(tmp_path / "absent"), "MemTotal") is None


def test_memory_bytes_falls_back_to_the_default(monkeypatch):
    monkeypatch.setattr(machine, "_proc_kb_field", lambda path, key: None)
    assert machine.memory_bytes(default=123) == 123
    assert machine.huge_page_bytes() == -1


def test_huge_page_mapping_has_the_size_asked():
    m = machine.huge_page_mapping(3 * 4096 + 5)
    assert len(m) == 3 * 4096 + 5
    m[:4] = b"abcd"
    assert m[:4] == b"abcd"


@pytest.mark.parametrize("flags,expected", [("fpu constant_tsc hypervisor avx2", 2445.406e6),
                                            ("fpu constant_tsc avx2", None),       # bare metal: a boosting clock
                                            ("fpu hypervisor avx2", None)])        # no constant TSC
def test_guest_tsc_clock(monkeypatch, tmp_path, flags, expected):
    from sparq_sim import machine
    info = tmp_path / "cpuinfo"
    info.write_text(f"processor\t: 0\nmodel name\t: AMD EPYC\ncpu MHz\t\t: 2445.406\nflags\t\t: {flags}\n")
    real = machine.Path
    monkeypatch.setattr(machine, "Path", lambda p: real(info) if p == "/proc/cpuinfo" else real(p))
    got = machine.guest_tsc_hz()
    assert got == (pytest.approx(expected) if expected else None)


CPUINFO = """processor\t: 0
vendor_id\t: {vendor}
cpu family\t: {family}
model\t\t: {model}
model name\t: {name}

processor\t: 1
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 143
"""


@pytest.mark.parametrize("vendor, family, model, core", [
    ("AuthenticAMD", 25, 1, "zen3"),          # Milan (EPYC 7003)
    ("AuthenticAMD", 25, 17, "zen4"),         # Genoa (EPYC 9004)
    ("AuthenticAMD", 25, 160, "zen4"),        # Bergamo / Siena
    ("GenuineIntel", 6, 143, "sapphire-rapids"),
    ("GenuineIntel", 6, 85, None),            # a core no hardware file names
    ("AuthenticAMD", 23, 49, None),           # Zen 2
])
def test_cpu_core_from_the_first_cores_signature(vendor, family, model, core):
    text = CPUINFO.format(vendor=vendor, family=family, model=model, name="x")
    assert machine.cpu_signature(text) == (vendor, family, model)
    assert machine.cpu_core(text) == core


def test_cpu_core_unknown_without_a_signature():
    assert machine.cpu_signature("processor\t: 0\nflags\t: fpu\n") is None
    assert machine.cpu_core("") is None
