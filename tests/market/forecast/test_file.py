"""Forecast files: validation names row and column; values land on the right buses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grid import Feeder, load_feeder
from market.errors import ForecastError, InputFileError
from market.forecast import elements_of, read_forecast
from tests.strategies import forecast_tables


@pytest.fixture(scope="module")
def feeder() -> Feeder:
    return load_feeder("cigre-lv")


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "base.csv"
    path.write_text(text)
    return path


def test_element_and_bus_rows_build_the_base(tmp_path: Path, feeder: Feeder) -> None:
    load0 = next(e for e in elements_of(feeder) if e.key == "load:0")
    other_bus = feeder.buses[5]
    path = _write(
        tmp_path,
        "interval,element,bus,p_mw,q_mvar\n"
        f"10,load:0,,0.05,0.01\n10,,{other_bus.index},0.002,0\n"
        f"11,load:0,,0.07,0.02\n11,,{other_bus.index},-0.003,0\n",
    )
    fc = read_forecast(path, feeder)
    assert (fc.first, fc.last) == (10, 11)
    p, q = fc.base_at(11)
    # load:0 consumes 0.07 MW: injection -0.07 at its bus; the bus row replaces its bus
    assert p[load0.position] == pytest.approx(-0.07)
    assert q[load0.position] == pytest.approx(-0.02)
    assert p[other_bus.position] == pytest.approx(-0.003)
    # every other element keeps its network value
    untouched = [i for i in range(feeder.n_bus) if i not in (load0.position, other_bus.position)]
    np.testing.assert_allclose(p[untouched], feeder.base_p_mw[untouched])
    with pytest.raises(ForecastError, match="interval 12"):
        fc.base_at(12)


def test_parquet_reads_like_csv(tmp_path: Path, feeder: Feeder) -> None:
    path = tmp_path / "base.parquet"
    pl.DataFrame(
        {
            "interval": [3, 4],
            "element": ["load:1", "load:1"],
            "p_mw": [0.01, 0.02],
            "q_mvar": [0, 0],
        }
    ).write_parquet(path)
    fc = read_forecast(path, feeder)
    assert fc.name == "file:base.parquet"
    assert fc.covers(4)
    assert not fc.covers(5)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("interval,element,p_mw\n1,load:0,0.1\n", "missing column(s) q_mvar"),
        ("interval,p_mw,q_mvar\n1,0.1,0\n", "missing column(s) bus or element"),
        ("interval,element,p_mw,q_mvar\nx,load:0,0.1,0\n", "row 1, column interval"),
        (
            "interval,element,p_mw,q_mvar\n1,load:0,0.1,0\n2,load:99,0.1,0\n",
            "row 2, column element",
        ),
        ("interval,element,p_mw,q_mvar\n1,line:0,0.1,0\n", "'line:0' is not an in-service element"),
        ("interval,bus,p_mw,q_mvar\n1,9999,0.1,0\n", "row 1, column bus"),
        ("interval,element,p_mw,q_mvar\n1,load:0,nan,0\n", "row 1, column p_mw"),
        ("interval,element,p_mw,q_mvar\n1,load:0,0.1,abc\n", "row 1, column q_mvar"),
        (
            "interval,element,bus,p_mw,q_mvar\n1,load:0,3,0.1,0\n",
            "row 1, column bus/element: give exactly one",
        ),
        (
            "interval,element,p_mw,q_mvar\n1,load:0,0.1,0\n1,load:0,0.2,0\n",
            "row 2, column interval: interval 1 gives load:0 twice (first in row 1)",
        ),
        (
            "interval,element,p_mw,q_mvar\n1,load:0,0.1,0\n3,load:0,0.1,0\n",
            "column interval: 1 interval(s) between 1 and 3 have no rows: 2",
        ),
        (
            "interval,element,p_mw,q_mvar\n1,load:0,0.1,0\n1,load:1,0.1,0\n2,load:0,0.1,0\n",
            "interval 2 has no row for load:1",
        ),
        ("interval,element,p_mw,q_mvar\n", "no rows"),
    ],
)
def test_bad_files_name_the_row_and_column(
    tmp_path: Path, feeder: Feeder, text: str, expected: str
) -> None:
    with pytest.raises(InputFileError) as info:
        read_forecast(_write(tmp_path, text), feeder)
    assert expected in str(info.value)


def test_every_problem_is_listed_at_once(tmp_path: Path, feeder: Feeder) -> None:
    text = "interval,element,p_mw,q_mvar\n1,load:0,x,0\n1,load:77,0.1,0\n-2,load:1,0.1,0\n"
    with pytest.raises(InputFileError) as info:
        read_forecast(_write(tmp_path, text), feeder)
    message = str(info.value)
    assert "3 problem(s)" in message
    assert "row 1, column p_mw" in message
    assert "row 2, column element" in message
    assert "row 3, column interval" in message


def test_element_at_a_bus_given_in_full_is_refused(tmp_path: Path, feeder: Feeder) -> None:
    load0 = next(e for e in elements_of(feeder) if e.key == "load:0")
    bus = feeder.buses[load0.position].index
    text = f"interval,element,bus,p_mw,q_mvar\n1,load:0,,0.1,0\n1,,{bus},0.1,0\n"
    with pytest.raises(InputFileError, match=r"row 1, column element: load:0 is at bus"):
        read_forecast(_write(tmp_path, text), feeder)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_file_base_is_the_sum_of_its_elements(
    tmp_path: Path, feeder: Feeder, data: st.DataObject
) -> None:
    """Property: each bus's base is Σ sign·value of its elements, file values replacing the
    network's; per interval, nothing leaks between intervals."""
    elements = {e.key: e for e in elements_of(feeder)}
    first, keys, rows = data.draw(forecast_tables(sorted(elements)))
    lines = ["interval,element,p_mw,q_mvar"]
    for k, values in enumerate(rows):
        lines += [f"{first + k},{key},{v!r},0" for key, v in zip(keys, values, strict=True)]
    path = tmp_path / "prop.csv"
    path.write_text("\n".join(lines) + "\n")
    fc = read_forecast(path, feeder)
    for k, values in enumerate(rows):
        given_values = dict(zip(keys, values, strict=True))
        expected = np.zeros(feeder.n_bus)
        for key, e in elements.items():
            expected[e.position] += e.sign * given_values.get(key, e.p_mw)
        np.testing.assert_allclose(fc.base_at(first + k)[0], expected, atol=1e-12)
    assert not fc.covers(first + len(rows))
