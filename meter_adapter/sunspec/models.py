"""The SunSpec models the adapter understands, as data.

Each model is a list of points in register order, as published by the SunSpec
Alliance (``models/json/model_<id>.json``). Offsets count from the first
register *after* the two-register model header (``ID``, ``L``), which is how
the model length ``L`` counts too.

- Common model 1: manufacturer, model, serial number.
- Inverter models 101, 102, 103 (single, split, three phase) share one layout.
- Meter models 201, 202, 203, 204 (single, split, wye, delta) share one layout.
- Battery base model 802 (``sunspec/models``, ``json/model_802.json``): capacity,
  state of charge, charge and discharge rates, battery power.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from meter_adapter.datatypes import DataType, register_count

__all__ = [
    "BASE_ADDRESSES",
    "BATTERY_MODEL",
    "BATTERY_MODEL_ID",
    "COMMON_MODEL",
    "COMMON_MODEL_ID",
    "END_MODEL_ID",
    "INVERTER_MODEL",
    "INVERTER_MODEL_IDS",
    "METER_MODEL",
    "METER_MODEL_IDS",
    "NAMEPLATE_MODEL",
    "NAMEPLATE_MODEL_ID",
    "SUNS_MARKER",
    "ModelLayout",
    "Point",
]

SUNS_MARKER = (0x5375, 0x6E53)
"""``"SunS"`` in two registers: marks the start of a SunSpec register map."""

BASE_ADDRESSES = (40000, 0, 50000)
"""Where SunSpec devices put the marker; probed in this order (40000 is by far the commonest)."""

END_MODEL_ID = 0xFFFF
"""Model id of the end marker after the last model."""

COMMON_MODEL_ID = 1
INVERTER_MODEL_IDS = frozenset({101, 102, 103})
METER_MODEL_IDS = frozenset({201, 202, 203, 204})
NAMEPLATE_MODEL_ID = 120
BATTERY_MODEL_ID = 802


@dataclass(frozen=True, slots=True)
class Point:
    """One named value inside a model.

    Attributes:
        name: SunSpec point name (``W``, ``TotWhImp``, ...).
        offset: First register, counted from the model's data (after ``ID``, ``L``).
        size: Number of registers.
        data_type: Layout, or ``None`` for a string.
        scale_factor: Name of the ``sunssf`` point scaling this one, if any.
    """

    name: str
    offset: int
    size: int
    data_type: DataType | None
    scale_factor: str | None = None


@dataclass(frozen=True, slots=True)
class ModelLayout:
    """All points of a model, in order, with their offsets."""

    name: str
    points: tuple[Point, ...]
    _index: dict[str, Point] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {point.name: point for point in self.points})

    @property
    def length(self) -> int:
        """The model length ``L`` in registers (without the header)."""
        last = self.points[-1]
        return last.offset + last.size

    def point(self, name: str) -> Point:
        """The point called ``name``; raises ``KeyError`` for an unknown name."""
        return self._index[name]


def _layout(name: str, spec: list[tuple[str, DataType | int, str | None]]) -> ModelLayout:
    """Build a layout from ``(name, type or string size, scale factor)`` rows in order."""
    points: list[Point] = []
    offset = 0
    for point_name, kind, scale_factor in spec:
        if isinstance(kind, DataType):
            point = Point(point_name, offset, register_count(kind), kind, scale_factor)
        else:
            point = Point(point_name, offset, kind, None, scale_factor)
        points.append(point)
        offset += point.size
    return ModelLayout(name, tuple(points))


_I16, _U16, _SF = DataType.INT16, DataType.UINT16, DataType.SUNSSF
_A32, _E16, _B32 = DataType.ACC32, DataType.ENUM16, DataType.BITFIELD32


def _phases(
    name: str, kind: DataType, sf: str, *, tag: str = "ph"
) -> list[tuple[str, DataType | int, str | None]]:
    """A total and its three phases: ``W``, ``WphA``, ... (``tag="Ph"``: ``TotWhExpPhA``)."""
    return [(name + suffix, kind, sf) for suffix in ("", f"{tag}A", f"{tag}B", f"{tag}C")]


COMMON_MODEL = _layout(
    "common",
    [
        ("Mn", 16, None),
        ("Md", 16, None),
        ("Opt", 8, None),
        ("Vr", 8, None),
        ("SN", 16, None),
        ("DA", _U16, None),
        ("Pad", DataType.PAD, None),
    ],
)

INVERTER_MODEL = _layout(
    "inverter",
    [
        ("A", _U16, "A_SF"),
        ("AphA", _U16, "A_SF"),
        ("AphB", _U16, "A_SF"),
        ("AphC", _U16, "A_SF"),
        ("A_SF", _SF, None),
        ("PPVphAB", _U16, "V_SF"),
        ("PPVphBC", _U16, "V_SF"),
        ("PPVphCA", _U16, "V_SF"),
        ("PhVphA", _U16, "V_SF"),
        ("PhVphB", _U16, "V_SF"),
        ("PhVphC", _U16, "V_SF"),
        ("V_SF", _SF, None),
        ("W", _I16, "W_SF"),
        ("W_SF", _SF, None),
        ("Hz", _U16, "Hz_SF"),
        ("Hz_SF", _SF, None),
        ("VA", _I16, "VA_SF"),
        ("VA_SF", _SF, None),
        ("VAr", _I16, "VAr_SF"),
        ("VAr_SF", _SF, None),
        ("PF", _I16, "PF_SF"),
        ("PF_SF", _SF, None),
        ("WH", _A32, "WH_SF"),
        ("WH_SF", _SF, None),
        ("DCA", _U16, "DCA_SF"),
        ("DCA_SF", _SF, None),
        ("DCV", _U16, "DCV_SF"),
        ("DCV_SF", _SF, None),
        ("DCW", _I16, "DCW_SF"),
        ("DCW_SF", _SF, None),
        ("TmpCab", _I16, "Tmp_SF"),
        ("TmpSnk", _I16, "Tmp_SF"),
        ("TmpTrns", _I16, "Tmp_SF"),
        ("TmpOt", _I16, "Tmp_SF"),
        ("Tmp_SF", _SF, None),
        ("St", _E16, None),
        ("StVnd", _E16, None),
        ("Evt1", _B32, None),
        ("Evt2", _B32, None),
        ("EvtVnd1", _B32, None),
        ("EvtVnd2", _B32, None),
        ("EvtVnd3", _B32, None),
        ("EvtVnd4", _B32, None),
    ],
)

METER_MODEL = _layout(
    "ac_meter",
    [
        *_phases("A", _I16, "A_SF"),
        ("A_SF", _SF, None),
        ("PhV", _I16, "V_SF"),
        ("PhVphA", _I16, "V_SF"),
        ("PhVphB", _I16, "V_SF"),
        ("PhVphC", _I16, "V_SF"),
        ("PPV", _I16, "V_SF"),
        ("PhVphAB", _I16, "V_SF"),
        ("PhVphBC", _I16, "V_SF"),
        ("PhVphCA", _I16, "V_SF"),
        ("V_SF", _SF, None),
        ("Hz", _I16, "Hz_SF"),
        ("Hz_SF", _SF, None),
        *_phases("W", _I16, "W_SF"),
        ("W_SF", _SF, None),
        *_phases("VA", _I16, "VA_SF"),
        ("VA_SF", _SF, None),
        *_phases("VAR", _I16, "VAR_SF"),
        ("VAR_SF", _SF, None),
        *_phases("PF", _I16, "PF_SF"),
        ("PF_SF", _SF, None),
        *_phases("TotWhExp", _A32, "TotWh_SF", tag="Ph"),
        *_phases("TotWhImp", _A32, "TotWh_SF", tag="Ph"),
        ("TotWh_SF", _SF, None),
        *_phases("TotVAhExp", _A32, "TotVAh_SF", tag="Ph"),
        *_phases("TotVAhImp", _A32, "TotVAh_SF", tag="Ph"),
        ("TotVAh_SF", _SF, None),
        *_phases("TotVArhImpQ1", _A32, "TotVArh_SF", tag="Ph"),
        *_phases("TotVArhImpQ2", _A32, "TotVArh_SF", tag="Ph"),
        *_phases("TotVArhExpQ3", _A32, "TotVArh_SF", tag="Ph"),
        *_phases("TotVArhExpQ4", _A32, "TotVArh_SF", tag="Ph"),
        ("TotVArh_SF", _SF, None),
        ("Evt", _B32, None),
    ],
)

NAMEPLATE_MODEL = _layout(
    "nameplate",
    [
        ("DERTyp", _E16, None),
        ("WRtg", _U16, "WRtg_SF"),
        ("WRtg_SF", _SF, None),
    ],
)
"""The leading points of nameplate model 120 (26 registers): the continuous power rating."""

_U32 = DataType.UINT32

BATTERY_MODEL = _layout(
    "battery",
    [
        ("AHRtg", _U16, "AHRtg_SF"),
        ("WHRtg", _U16, "WHRtg_SF"),
        ("WChaRteMax", _U16, "WChaDisChaMax_SF"),
        ("WDisChaRteMax", _U16, "WChaDisChaMax_SF"),
        ("DisChaRte", _U16, "DisChaRte_SF"),
        ("SoCMax", _U16, "SoC_SF"),
        ("SoCMin", _U16, "SoC_SF"),
        ("SoCRsvMax", _U16, "SoC_SF"),
        ("SoCRsvMin", _U16, "SoC_SF"),
        ("SoC", _U16, "SoC_SF"),
        ("DoD", _U16, "DoD_SF"),
        ("SoH", _U16, "SoH_SF"),
        ("NCyc", _U32, None),
        ("ChaSt", _E16, None),
        ("LocRemCtl", _E16, None),
        ("Hb", _U16, None),
        ("CtrlHb", _U16, None),
        ("AlmRst", _U16, None),
        ("Typ", _E16, None),
        ("State", _E16, None),
        ("StateVnd", _E16, None),
        ("WarrDt", _U32, None),
        ("Evt1", _B32, None),
        ("Evt2", _B32, None),
        ("EvtVnd1", _B32, None),
        ("EvtVnd2", _B32, None),
        ("V", _U16, "V_SF"),
        ("VMax", _U16, "V_SF"),
        ("VMin", _U16, "V_SF"),
        ("CellVMax", _U16, "CellV_SF"),
        ("CellVMaxStr", _U16, None),
        ("CellVMaxMod", _U16, None),
        ("CellVMin", _U16, "CellV_SF"),
        ("CellVMinStr", _U16, None),
        ("CellVMinMod", _U16, None),
        ("CellVAvg", _U16, "CellV_SF"),
        ("A", _I16, "A_SF"),
        ("AChaMax", _U16, "AMax_SF"),
        ("ADisChaMax", _U16, "AMax_SF"),
        ("W", _I16, "W_SF"),
        ("ReqInvState", _E16, None),
        ("ReqW", _I16, "W_SF"),
        ("SetOp", _E16, None),
        ("SetInvState", _E16, None),
        ("AHRtg_SF", _SF, None),
        ("WHRtg_SF", _SF, None),
        ("WChaDisChaMax_SF", _SF, None),
        ("DisChaRte_SF", _SF, None),
        ("SoC_SF", _SF, None),
        ("DoD_SF", _SF, None),
        ("SoH_SF", _SF, None),
        ("V_SF", _SF, None),
        ("CellV_SF", _SF, None),
        ("A_SF", _SF, None),
        ("AMax_SF", _SF, None),
        ("W_SF", _SF, None),
    ],
)
"""Battery base model 802 (62 registers), point for point as ``sunspec/models``
``json/model_802.json`` lists it (https://github.com/sunspec/models). Its ``W``
("total power flowing to/from the battery bank") carries no sign in the model
text; gridex reads it in the SunSpec DER convention, positive while discharging."""
