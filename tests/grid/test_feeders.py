"""Loading feeders by name or file, and the typed model built from them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandapower as pp
import pytest

from grid import (
    BUILTIN_FEEDERS,
    Feeder,
    FeederFileError,
    FeederNotFoundError,
    UnsupportedFeederError,
    load_feeder,
)
from grid.feeders import builtin_net


@pytest.mark.parametrize("name", sorted(BUILTIN_FEEDERS))
def test_builtin_feeder_model_matches_pandapower(name: str) -> None:
    feeder = load_feeder(name)
    net = builtin_net(name)
    assert feeder.n_bus == len(net.bus)
    assert len(feeder.lines) == int(net.line.in_service.sum())
    assert len(feeder.trafos) == int(net.trafo.in_service.sum())
    assert [b.position for b in feeder.buses] == list(range(feeder.n_bus))
    # base injection: generation minus load, as pandapower sums it
    load = (net.load.p_mw * net.load.scaling)[net.load.in_service].sum()
    sgen = (net.sgen.p_mw * net.sgen.scaling)[net.sgen.in_service].sum()
    assert feeder.base_p_mw.sum() == pytest.approx(sgen - load)
    assert feeder.connectable_buses, "every built-in feeder has connectable buses"


@pytest.mark.parametrize("name", sorted(BUILTIN_FEEDERS))
def test_slack_and_hv_terminals_are_not_connectable(name: str) -> None:
    feeder = load_feeder(name)
    net = feeder.net
    assert not feeder.bus(feeder.ext_grid.bus).connectable
    for hv in net.trafo.hv_bus:
        assert not feeder.bus(int(hv)).connectable
    for bus in feeder.connectable_buses:
        assert bus.vn_kv <= 35.0


def test_unknown_name_lists_what_is_accepted() -> None:
    with pytest.raises(FeederNotFoundError) as info:
        load_feeder("no-such-feeder")
    message = str(info.value)
    for name in BUILTIN_FEEDERS:
        assert name in message
    assert "pandapower JSON" in message
    assert isinstance(info.value, LookupError)


def test_json_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "village.json"
    pp.to_json(builtin_net("kerber-dorfnetz"), str(path))
    feeder = load_feeder(path)
    reference = load_feeder("kerber-dorfnetz")
    assert feeder.name == "village"
    assert feeder.buses == reference.buses
    assert feeder.branches == reference.branches
    np.testing.assert_allclose(feeder.base_p_mw, reference.base_p_mw)


@pytest.mark.parametrize("content", ["", "{not json", '{"a": 1}', "[1, 2, 3]"])
def test_broken_file_is_a_clear_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "broken.json"
    path.write_text(content)
    with pytest.raises(FeederFileError) as info:
        load_feeder(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, ValueError)


def test_connectable_column_overrides_the_rule(tmp_path: Path) -> None:
    net = builtin_net("cigre-lv")
    net.bus["connectable"] = False
    net.bus.loc[[3, 4], "connectable"] = True
    feeder = Feeder.from_net(net, name="custom")
    assert [b.index for b in feeder.connectable_buses] == [3, 4]


def test_two_external_grids_are_rejected() -> None:
    net = builtin_net("cigre-lv")
    pp.create_ext_grid(net, bus=3)
    with pytest.raises(UnsupportedFeederError, match="exactly one"):
        Feeder.from_net(net, name="two-slacks")


def test_feeder_does_not_share_state_with_the_callers_net() -> None:
    net = builtin_net("cigre-lv")
    feeder = Feeder.from_net(net, name="copy")
    net.load["p_mw"] *= 10
    assert feeder.base_p_mw.sum() == pytest.approx(load_feeder("cigre-lv").base_p_mw.sum())
