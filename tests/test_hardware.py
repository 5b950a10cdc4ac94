"""The hardware library: every file valid and sourced, aliases, user files, clear errors."""

import pytest

from sparq_sim.errors import UserError
from sparq_sim.hardware import HERE, list_devices, load_device

REQUIRED = {"a100-40gb", "a100-80gb", "h100-sxm", "h100-pcie", "h200", "a10g", "epyc-7763",
            "epyc-9654", "xeon-8480"}


def test_library_has_the_required_devices_and_each_number_has_a_source():
    devices = {d.name: d for d in list_devices()}
    assert REQUIRED <= set(devices)
    for device in devices.values():
        for name, figure in device.figures().items():
            assert figure.source.strip(), f"{device.name}.{name} has no source"
            assert figure.basis in ("datasheet", "measured", "derived", "fitted", "assumed")


@pytest.mark.parametrize("alias,name", [("a100", "a100-80gb"), ("h100", "h100-sxm"), ("H100", "h100-sxm"),
                                        ("h100-pcie", "h100-pcie")])
def test_aliases(alias, name):
    assert load_device(alias).name == name


def test_granularity_by_kind():
    assert load_device("h100").granularity == 32
    assert load_device("epyc-7763").granularity == 64


def test_peak_falls_back_to_wider_format():
    a100 = load_device("a100-40gb")
    assert a100.peak("float8") == a100.peak("float16") == 312e12


def test_user_file_by_path(tmp_path):
    text = (HERE / "h100-sxm.toml").read_text().replace('name = "h100-sxm"', 'name = "my-gpu"')
    text = text.replace("value = 3.35e12", "value = 1.0e12")
    path = tmp_path / "my-gpu.toml"
    path.write_text(text)
    device = load_device(str(path))
    assert device.name == "my-gpu"
    assert device.bandwidth_Bps.value == 1.0e12


def test_unknown_name_lists_choices():
    with pytest.raises(UserError, match="unknown hardware 'nope'.*h100-sxm"):
        load_device("nope")


@pytest.mark.parametrize("edit,field", [
    (lambda t: t.replace('bandwidth_Bps = { value = 3.35e12', 'bandwidth_Bps = { value = "fast"'), "memory.bandwidth_Bps"),
    (lambda t: t.replace('basis = "datasheet", source = "50 MB L2', 'basis = "guess", source = "50 MB L2'), "cache.llc_bytes"),
    (lambda t: t.replace('launch_s = ', 'x_launch_s = '), "unknown field 'x_launch_s'"),
    (lambda t: "\n".join(line for line in t.splitlines() if not line.startswith("launch_s")),
     "overheads.launch_s is missing"),
    (lambda t: t.replace('kind = "gpu"', 'kind = "fpga"'), "kind"),
    (lambda t: t.replace('access_granularity_bytes = { value = 32', 'access_granularity_bytes = { value = 48'),
     "memory.access_granularity_bytes"),
    (lambda t: t + "\n[[[ not toml", "not valid TOML"),
])
def test_malformed_file_names_the_field(tmp_path, edit, field):
    path = tmp_path / "bad.toml"
    path.write_text(edit((HERE / "h100-sxm.toml").read_text()))
    with pytest.raises(UserError, match=field.replace(".", r"\.")):
        load_device(str(path))


def test_missing_source_is_an_error(tmp_path):
    text = (HERE / "h100-sxm.toml").read_text()
    text = text.replace('units = { value = 132, basis = "datasheet", source = "https://resources.nvidia.com/en-us-tensor-core/gtc22-whitepaper-hopper" }',
                        'units = { value = 132, basis = "datasheet", source = "" }')
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(UserError, match="compute.units: source is missing"):
        load_device(str(path))


def test_cpu_core_is_one_of_the_known_and_selects_the_llama_cpp_op_figures(tmp_path):
    from sparq_sim.implementations.llama_cpp import DEFAULT_CORE, OP_FIGURES, op_figures
    assert load_device("epyc-7763").core == "zen3" and load_device("epyc-9654").core == "zen4"
    assert load_device("h100-sxm").core is None
    assert op_figures(load_device("epyc-9654")) is OP_FIGURES["zen4"]
    assert op_figures(load_device("xeon-8480")) is OP_FIGURES["sapphire-rapids"]
    assert op_figures(load_device("h100-sxm")) is OP_FIGURES[DEFAULT_CORE]       # no core named
    text = (HERE / "epyc-7763.toml").read_text().replace('core = "zen3"', 'core = "zen9"')
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(UserError, match=r"compute\.core.*zen3, zen4"):
        load_device(str(path))
