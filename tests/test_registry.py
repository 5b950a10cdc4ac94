"""The one registry mechanism (sparq_sim.registry) and the name enums: lookup, laziness, errors."""

import json
import subprocess
import sys

import pytest

from sparq_sim.errors import UserError
from sparq_sim.registry import Registry


def test_unknown_name_lists_the_known_ones_in_order():
    reg = Registry("colour", {"red": "json:dumps", "blue": "json:loads"})
    with pytest.raises(UserError, match=r"^unknown colour 'green': choose from red, blue$"):
        reg.get("green")
    assert reg.names() == ("red", "blue")
    assert list(reg) == ["red", "blue"]


def test_names_are_normalised_and_targets_loaded_on_first_use():
    reg = Registry("codec", {"json": "json:dumps"})
    assert " JSON " in reg
    assert reg.get(" JSON ") is json.dumps
    reg.add("mine", len)                      # an object registers as itself
    assert reg.get("mine") is len
    assert reg.items() == [("json", json.dumps), ("mine", len)]


def test_entry_in_a_missing_module_is_not_available_not_a_traceback():
    reg = Registry("timing", {"ghost": "sparq_sim_no_such_module.timer:Ghost"})
    with pytest.raises(UserError, match=r"^timing 'ghost' is not available in this installation$"):
        reg.get("ghost")


def test_lookup_imports_only_the_entry_asked_for():
    code = ("import sys; from sparq_sim.timing import TIMERS; TIMERS.get('roofline'); "
            "print('sparq_sim.simulator.timer' in sys.modules, 'sparq_sim.calibration.timer' in sys.modules, "
            "'sparq_sim.timing.roofline' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False", "True"]


def test_implementations_resolve_a_name_or_a_model():
    from sparq_sim.implementations import ImplementationModel, get_implementation, resolve
    ideal = get_implementation("ideal")
    assert isinstance(ideal, ImplementationModel)
    assert resolve("ideal") is ideal and resolve(" Ideal ") is ideal and resolve(ideal) is ideal
    with pytest.raises(UserError, match="unknown implementation 'magic': choose from .*ideal"):
        resolve("magic")
    with pytest.raises(UserError, match="unknown implementation"):
        resolve(object())                      # neither a model nor a name


def test_timers_are_timers():
    from sparq_sim.hardware import load_device
    from sparq_sim.timing import Timer, get_timer
    timer = get_timer("roofline", load_device("h100"))
    assert isinstance(timer, Timer) and timer.name == "roofline"


def test_kernel_registries_match_the_impl_names_and_reject_unknown_ones():
    from sparq_sim.kernels import DENSE_IMPLS, SPARQ_IMPLS, Kernel
    from sparq_sim.kernels.registry import DENSE_KERNELS, SPARQ_KERNELS, Op
    assert DENSE_IMPLS == ("reference", "cpu", "triton", "torch-eager", "torch-sdpa")
    assert SPARQ_IMPLS == ("reference", "cpu", "triton", "torch-eager", "torch-eager-onek")
    for reg, op in ((DENSE_KERNELS, Op.DENSE), (SPARQ_KERNELS, Op.SPARQ)):
        for name, kernel in reg.items():
            assert isinstance(kernel, Kernel) and kernel.name == name and kernel.op is op
    with pytest.raises(UserError, match=r"^unknown impl 'CPU' for sparq_attention: choose from reference, cpu"):
        SPARQ_KERNELS.get("CPU")             # kernel names are exact, not case-folded
    assert SPARQ_KERNELS.get("torch-eager-onek").fixed == {"K_t": None}


def test_choices_are_their_values_in_outputs_and_comparisons():
    from sparq_sim.registry import MethodName, StoreK
    from sparq_sim.timing.result import Bound, classify
    from sparq_sim.traffic import Access, Pattern
    assert json.dumps({MethodName.DOUBLE_SPARSITY: [StoreK.ONCE, Bound.MEMORY]}) == \
        '{"double-sparsity": ["once", "memory"]}'
    assert f"{Pattern.SPARSE_ROWS:>12}|{StoreK.TWICE}" == " sparse_rows|twice"
    assert Access("gather", 3, 64).pattern is Pattern.GATHER
    assert classify(1.0, 2.0, 2.0) is Bound.COMPUTE     # first of equals
    with pytest.raises(ValueError, match="unknown access pattern 'strided'"):
        Access("strided", 1, 1)
