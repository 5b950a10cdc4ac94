"""hw list fits 100 columns; hw show includes the simulator's [dram] section."""

import json


def test_hw_list_fits_100_columns(cli):
    code, out, err = cli("hw", "list")
    assert code == 0
    assert max(len(line) for line in out.splitlines()) <= 100
    assert "h100 = h100-sxm" in out and "a100 = a100-80gb" in out   # every alias is still shown


def test_hw_show_has_dram_channels(cli):
    code, out, err = cli("hw", "show", "h100")
    rows = {line.split()[0]: line.split()[1] for line in out.splitlines() if line.startswith(("channels", "dram."))}
    assert rows["channels"] == "80"          # the memory system's 64-bit channels
    assert rows["dram.channels"] == "160"    # what the simulator schedules (pseudo-channels)
    code, out, err = cli("hw", "show", "h100", "--format", "json")
    assert json.loads(out)["dram"]["channels"]["value"] == 160
