"""SunSpec register dumps written out by hand, with the values they must decode to.

Each dump is the holding registers of a device from its base address. The
expected values were computed by hand from the SunSpec model definitions
(models/json/model_<id>.json): scale factors applied as value × 10^sf,
strings two ASCII bytes per register, sentinels as "not implemented".
"""

from __future__ import annotations

NI16 = 0x8000  # int16 / sunssf "not implemented"
NU16 = 0xFFFF  # uint16 / enum16 "not implemented"

SUNS = [0x5375, 0x6E53]  # "SunS"
END = [0xFFFF, 0x0000]

# --- common model 1 (L = 66) -------------------------------------------------
# Mn "Fronius", Md "Symo 5.0-3-M", Opt not implemented, Vr "1.2.3", SN "12345678", DA 1
COMMON_1 = [
    1, 66,
    # Mn: 'Fr' 'on' 'iu' 's\0', then padding (16 registers)
    0x4672, 0x6F6E, 0x6975, 0x7300, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    # Md: 'Sy' 'mo' ' 5' '.0' '-3' '-M' (16 registers)
    0x5379, 0x6D6F, 0x2035, 0x2E30, 0x2D33, 0x2D4D, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    # Opt: all zero = not implemented (8 registers)
    0, 0, 0, 0, 0, 0, 0, 0,
    # Vr: '1.' '2.' '3\0' (8 registers)
    0x312E, 0x322E, 0x3300, 0, 0, 0, 0, 0,
    # SN: '12' '34' '56' '78' (16 registers)
    0x3132, 0x3334, 0x3536, 0x3738, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    # DA, Pad
    1, 0x8000,
]  # fmt: skip

# --- three-phase inverter model 103 (L = 50) ---------------------------------
# W = 1523 × 10^1 = 15230 W; WH = 123456 × 10^1 = 1234560 Wh; Hz 50.01
INVERTER_103 = [
    103, 50,
    1234, 411, 412, 411, 0xFFFE,      # A, AphA, AphB, AphC, A_SF = -2  (12.34 A)
    NU16, NU16, NU16,                 # PPVphAB, PPVphBC, PPVphCA: not implemented
    2301, 2302, 2299, 0xFFFF,         # PhVphA..C, V_SF = -1  (230.1 V ...)
    1523, 0x0001,                     # W, W_SF = 1  -> 15230 W
    5001, 0xFFFE,                     # Hz, Hz_SF = -2 -> 50.01 Hz
    NI16, NI16,                       # VA, VA_SF: not implemented
    NI16, NI16,                       # VAr, VAr_SF
    NI16, NI16,                       # PF, PF_SF
    0x0001, 0xE240, 0x0001,           # WH = 0x0001E240 = 123456, WH_SF = 1 -> 1234560 Wh
    NU16, NI16, NU16, NI16, NI16, NI16,  # DCA, DCA_SF, DCV, DCV_SF, DCW, DCW_SF
    412, NI16, NI16, NI16, 0xFFFF,    # TmpCab 41.2 C, TmpSnk, TmpTrns, TmpOt, Tmp_SF = -1
    4, NU16,                          # St = MPPT, StVnd
    0, 0, 0, 0,                       # Evt1, Evt2
    0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF,  # EvtVnd1..4
]  # fmt: skip

# --- wye meter model 203 (L = 105) ---------------------------------------------
# W = -1234 W (meter convention: negative = export) -> reading power_w = +1234
# TotWhExp = 0x0012D687 = 1234567, TotWhImp = 0x00003039 = 12345, TotWh_SF = 1
#   -> export 12345670 Wh, import 123450 Wh
METER_203 = [
    203, 105,
    540, 180, 180, 180, 0xFFFE,       # A, AphA..C, A_SF = -2
    2300, 2300, 2300, 2300,           # PhV, PhVphA..C
    3984, 3984, 3984, 3984, 0xFFFF,   # PPV, PhVphAB..CA, V_SF = -1
    4998, 0xFFFE,                     # Hz 49.98, Hz_SF
    0xFB2E, 0xFE5A, 0xFE5A, 0xFE5A, 0x0000,  # W = -1234, WphA..C = -422, W_SF = 0
    NI16, NI16, NI16, NI16, NI16,     # VA, VAphA..C, VA_SF
    NI16, NI16, NI16, NI16, NI16,     # VAR, VARphA..C, VAR_SF
    NI16, NI16, NI16, NI16, NI16,     # PF, PFphA..C, PF_SF
    0x0012, 0xD687, 0, 0, 0, 0, 0, 0,  # TotWhExp = 1234567, phases not implemented (acc32 0)
    0x0000, 0x3039, 0, 0, 0, 0, 0, 0,  # TotWhImp = 12345, phases
    0x0001,                           # TotWh_SF = 1
    *([0] * 16), NI16,                # TotVAh*: acc32 not implemented, TotVAh_SF
    *([0] * 32), NI16,                # TotVArh*: acc32 not implemented, TotVArh_SF
    0, 0,                             # Evt
]  # fmt: skip

INVERTER_AND_METER_AT_40000 = [*SUNS, *COMMON_1, *INVERTER_103, *METER_203, *END]
"""Base 40000: SunS, 1 @40002, 103 @40070, 203 @40122, end @40229."""

# --- single-phase meter model 201 at base 0, fine energy resolution ----------
# W = 2500 × 10^-1 = 250.0 W import -> reading power_w = -250
# TotWhImp = 98765 × 10^-1 = 9876.5 Wh -> 9876 Wh; TotWhExp = 0 (acc32 "not implemented")
METER_201 = [
    201, 105,
    11, 11, NI16, NI16, 0xFFFF,       # A 1.1, AphA, AphB/C not implemented, A_SF = -1
    2290, 2290, NI16, NI16,           # PhV, PhVphA, B, C
    NI16, NI16, NI16, NI16, 0xFFFF,   # PPV.., V_SF = -1
    5000, 0xFFFE,                     # Hz 50.00
    2500, 2500, NI16, NI16, 0xFFFF,   # W = 2500, WphA, WphB/C, W_SF = -1 -> 250.0 W
    *([NI16] * 15),                   # VA.., VAR.., PF.. with their scale factors
    0, 0, 0, 0, 0, 0, 0, 0,           # TotWhExp and phases: 0
    0x0001, 0x81CD, 0x0001, 0x81CD, 0, 0, 0, 0,  # TotWhImp = 0x000181CD = 98765, PhA
    0xFFFF,                           # TotWh_SF = -1
    *([0] * 16), NI16,
    *([0] * 32), NI16,
    0, 0,
]  # fmt: skip

METER_ONLY_AT_0 = [*SUNS, *COMMON_1, *METER_201, *END]
"""Base 0: SunS, 1 @2, 201 @70, end @177."""


def inverter_101(wh_high: int, wh_low: int) -> list[int]:
    """Single-phase inverter model 101 with W = 3000 W and WH = (wh_high << 16) | wh_low Wh."""
    return [
        101, 50,
        13, 13, NU16, NU16, 0,            # A 13 A, AphA, AphB/C n/i, A_SF = 0
        NU16, NU16, NU16, 231, NU16, NU16, 0,  # voltages, V_SF
        3000, 0,                          # W = 3000, W_SF = 0
        50, 0,                            # Hz
        NI16, NI16, NI16, NI16, NI16, NI16,
        wh_high, wh_low, 0,               # WH, WH_SF = 0
        *([NU16, NI16] * 3),
        NI16, NI16, NI16, NI16, NI16,
        4, NU16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ]  # fmt: skip


def inverter_only_at_50000(wh_high: int, wh_low: int) -> list[int]:
    """Base 50000: SunS, 1 @50002, 101 @50070, end @50122."""
    return [*SUNS, *COMMON_1, *inverter_101(wh_high, wh_low), *END]


# --- battery base model 802 (L = 62) -------------------------------------------
# Offsets as sunspec/models json/model_802.json lists the points.
# WHRtg = 1350 × 10^1 = 13500 Wh; WChaRteMax 500 × 10 = 5000 W, WDisChaRteMax 4600 W
# SoC = 667 × 10^-1 = 66.7 % -> ⌊13500 × 0.667⌋ = ⌊9004.5⌋ = 9004 Wh
# lowest: max(SoCMin 5.0 %, SoCRsvMin 15.0 %) = 15 % -> ⌈2025⌉ = 2025 Wh
# highest: SoCMax 95.0 % (SoCRsvMax not implemented) -> ⌊12825⌋ = 12825 Wh
# W = 0xF100 = -3840 W (charging), ChaSt = 4 (charging)
BATTERY_802 = [
    802, 62,
    195, 1350, 500, 460,        # AHRtg, WHRtg, WChaRteMax, WDisChaRteMax
    NU16,                       # DisChaRte: not implemented
    950, 50, NU16, 150,         # SoCMax 95.0, SoCMin 5.0, SoCRsvMax n/i, SoCRsvMin 15.0
    667,                        # SoC 66.7 %
    NU16, 98,                   # DoD n/i, SoH 98 %
    0x0000, 0x0123,             # NCyc = 291
    4, 1, 42, NU16, 0,          # ChaSt charging, LocRemCtl local, Hb, CtrlHb n/i, AlmRst
    4, 3, NU16,                 # Typ lithium-ion, State connected, StateVnd n/i
    0xFFFF, 0xFFFF,             # WarrDt: not implemented
    0, 0, 0, 0, 0, 0, 0, 0,     # Evt1, Evt2, EvtVnd1, EvtVnd2
    5120, NU16, NU16,           # V 51.20 V, VMax, VMin n/i
    3345, 1, 2, 3301, 1, 5, 3320,  # CellVMax, Str, Mod, CellVMin, Str, Mod, CellVAvg
    0xFFB5, 100, 100,           # A = -75 × 10^-1 A, AChaMax, ADisChaMax
    0xF100,                     # W = -3840
    NU16, NI16, 1, 3,           # ReqInvState n/i, ReqW n/i, SetOp connect, SetInvState started
    0, 1, 1, NI16,              # AHRtg_SF, WHRtg_SF, WChaDisChaMax_SF, DisChaRte_SF n/i
    0xFFFF, NI16, 0,            # SoC_SF = -1, DoD_SF n/i, SoH_SF
    0xFFFE, 0xFFFD, 0xFFFF, 0,  # V_SF -2, CellV_SF -3, A_SF -1, AMax_SF
    0,                          # W_SF
]  # fmt: skip

#: Where the points gridex reads sit in model 802's data, counted by hand from
#: model_802.json (an independent check of the layout in sunspec/models.py).
BATTERY_802_OFFSETS = {
    "WHRtg": 1, "WChaRteMax": 2, "WDisChaRteMax": 3, "SoCMax": 5, "SoCMin": 6,
    "SoCRsvMax": 7, "SoCRsvMin": 8, "SoC": 9, "ChaSt": 14, "W": 45,
    "WHRtg_SF": 51, "WChaDisChaMax_SF": 52, "SoC_SF": 54, "W_SF": 61,
}  # fmt: skip
