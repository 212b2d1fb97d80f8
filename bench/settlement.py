"""Settlement benchmark: gas per trade netted vs ERC-20 transfers, and settlements/s.

Run: ``.venv/bin/python bench/settlement.py`` (about five minutes on 2 cores).

Part 1, gas per trade (embedded EVM, Prague rules). An interval has N
bilateral trades (buyer, seller, amount) drawn at random among N accounts
(so about 86 % of the accounts are touched). Netted: the trades collapse to
one escrow delta per touched account, posted as one ``Settlement.settle``
transaction. Baseline: the same trades as one ``EnergyToken.transfer`` each,
signed by the buyer, with every account already holding tokens (the cheapest
case for ERC-20: no storage slot goes from zero to nonzero). A last row puts
the N = 100 trades between 200 distinct accounts, the worst case for netting.

Part 1b, provisional and reconciliation postings with N = 100 trades: the
provisional posting (``settle``, version 0) of 100 random trades, then a
reconciliation (``correct``, version 1) that carries only the difference after
late readings moved every trade's amount by a random few percent; gas per
trade of each, and of an advance of the finality watermarks.

Part 2, settlements per second through :class:`contracts.SettlementDriver`
(all checks included: interval state, nonce, gas, receipt) with 35 accounts
per interval, like the demo feeder, on the embedded EVM and on a Hardhat node.

Part 3, ``gridex verify`` of a demo day: runs ``gridex demo --start-hour H
--intervals N`` (default 10 and 8, a shorter day; ``--intervals 96
--start-hour 0`` for a whole one), quotes the demo's own verify line (every
interval recomputed and checked against its embedded chain), then times on
the same journal, one after the other: the bundles written from the journal,
verify as it was (the feeder loaded again for every bundle) and verify as it
is (each feeder loaded once), with the time per interval. ``--journal DB``
skips the demo and uses that engine journal; ``--only verify`` or ``--only
gas`` runs one part.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount

from contracts import Chain, Ledger, SettlementDriver, canonical_settlement, deploy
from contracts.devnode import HARDHAT_DEV_KEYS, HardhatNode

SIZES = (10, 100, 1000)
SPEED_ACCOUNTS = 35
SPEED_INTERVALS = 30
TOKENS_EACH = 10**12


@dataclass(frozen=True)
class GasRow:
    label: str
    trades: int
    accounts: int
    netted_gas: int
    transfer_gas: int


def _accounts(count: int, seed: int) -> list[LocalAccount]:
    return [Account.from_key((seed * 100_000 + i + 1).to_bytes(32, "big")) for i in range(count)]


def _trades(
    rng: random.Random, people: list[LocalAccount], count: int, *, distinct: bool
) -> list[tuple[LocalAccount, LocalAccount, int]]:
    if distinct:  # every trade between two accounts no other trade touches
        return [(people[2 * i], people[2 * i + 1], rng.randint(1, 10**6)) for i in range(count)]
    trades = []
    for _ in range(count):
        buyer, seller = rng.sample(people, 2)
        trades.append((buyer, seller, rng.randint(1, 10**6)))
    return trades


def measure_gas(trades_count: int, *, distinct: bool, seed: int) -> GasRow:
    rng = random.Random(seed)
    population = 2 * trades_count if distinct else trades_count
    people = _accounts(population, seed)
    chain = Chain.embedded(prefund=[p.address for p in people])
    ledger = Ledger(chain, deploy(chain))
    operator = chain.operator.address
    ledger.mint(operator, TOKENS_EACH * population)
    ledger.approve(TOKENS_EACH * population)
    for person in people:
        ledger.mint(person.address, TOKENS_EACH)  # for the ERC-20 baseline
        ledger.deposit_for(person.address, TOKENS_EACH)  # escrow for the netted settlement
    trades = _trades(rng, people, trades_count, distinct=distinct)

    deltas: dict[str, int] = {}
    for buyer, seller, amount in trades:
        deltas[buyer.address] = deltas.get(buyer.address, 0) - amount
        deltas[seller.address] = deltas.get(seller.address, 0) + amount
    accounts, _ = canonical_settlement(deltas, 0)
    receipt = SettlementDriver(ledger).settle_interval(1, deltas, 0, b"\x01" * 32)

    transfer_gas = 0
    token = ledger.token_contract.functions
    for buyer, seller, amount in trades:
        done = chain.transact(token.transfer(seller.address, amount), signer=buyer)
        transfer_gas += int(done["gasUsed"])
    label = f"{trades_count}" + (" (all accounts distinct)" if distinct else "")
    return GasRow(label, trades_count, len(accounts), receipt.gas_used, transfer_gas)


@dataclass(frozen=True)
class PostingRow:
    trades: int
    provisional_gas: int
    provisional_accounts: int
    correction_gas: int
    correction_accounts: int
    advance_gas: int


def _net(trades: list[tuple[LocalAccount, LocalAccount, int]]) -> dict[str, int]:
    deltas: dict[str, int] = {}
    for buyer, seller, amount in trades:
        deltas[buyer.address] = deltas.get(buyer.address, 0) - amount
        deltas[seller.address] = deltas.get(seller.address, 0) + amount
    return deltas


def measure_postings(trades_count: int, *, seed: int) -> PostingRow:
    rng = random.Random(seed)
    people = _accounts(trades_count, seed)
    chain = Chain.embedded(prefund=[p.address for p in people])
    ledger = Ledger(chain, deploy(chain))
    ledger.mint(chain.operator.address, TOKENS_EACH * trades_count)
    ledger.approve(TOKENS_EACH * trades_count)
    for person in people:
        ledger.deposit_for(person.address, TOKENS_EACH)
    trades = _trades(rng, people, trades_count, distinct=False)
    provisional = _net(trades)
    late = [(b, s, max(1, a + rng.randint(-a // 20, a // 20))) for b, s, a in trades]
    final = _net(late)
    difference = {a: final.get(a, 0) - provisional.get(a, 0) for a in final.keys() | provisional}
    difference = {a: d for a, d in difference.items() if d}
    driver = SettlementDriver(ledger)
    first = driver.settle_interval(1, provisional, 0, b"\x01" * 32)
    second = driver.correct_interval(
        1,
        version=1,
        previous_hash=b"\x01" * 32,
        deltas=difference,
        fee=0,
        result_hash=b"\x02" * 32,
    )
    call = ledger.settlement_contract.functions.advance(2, 100)
    advance = int(chain.transact(call)["gasUsed"])
    accounts_first, _ = canonical_settlement(provisional, 0)
    accounts_second, _ = canonical_settlement(difference, 0)
    return PostingRow(
        trades_count,
        first.gas_used,
        len(accounts_first),
        second.gas_used,
        len(accounts_second),
        advance,
    )


@dataclass(frozen=True)
class SpeedRow:
    chain: str
    settlements: int
    seconds: float
    gas_each: int


def measure_speed(chain: Chain, label: str) -> SpeedRow:
    ledger = Ledger(chain, deploy(chain))
    people = _accounts(SPEED_ACCOUNTS, seed=7)
    ledger.mint(chain.operator.address, TOKENS_EACH * SPEED_ACCOUNTS)
    ledger.approve(TOKENS_EACH * SPEED_ACCOUNTS)
    for person in people:
        ledger.deposit_for(person.address, TOKENS_EACH)
    rng = random.Random(3)
    books = []
    for _ in range(SPEED_INTERVALS):
        deltas = {p.address: rng.randint(-(10**6), 10**6) for p in people}
        fee = 1000
        deltas[people[0].address] -= sum(deltas.values()) + fee
        books.append((deltas, fee))
    driver = SettlementDriver(ledger)
    start = time.perf_counter()
    receipts = [
        driver.settle_interval(k, deltas, fee, (k + 1).to_bytes(32, "big"))
        for k, (deltas, fee) in enumerate(books)
    ]
    seconds = time.perf_counter() - start
    gas_each = sum(r.gas_used for r in receipts) // len(receipts)
    return SpeedRow(label, len(receipts), seconds, gas_each)


@dataclass(frozen=True)
class VerifyRow:
    intervals: int
    demo_line: str  # the demo's own "gridex verify: ..." line ("" with --journal)
    bundles_s: float
    before_s: float  # every bundle loads its feeder again (verify as it was)
    after_s: float  # each feeder loaded once
    differences: int


def measure_verify(journal: Path | None, *, start_hour: int, intervals: int) -> VerifyRow:
    from market._cli_verify import _Feeders, bundles_from_journal, verify_folders
    from market.bundle import verify_bundle

    work = Path(tempfile.mkdtemp(prefix="gridex-bench-verify-"))
    demo_line = ""
    if journal is None:
        done = subprocess.run(
            [
                sys.executable,
                *("-m", "market.cli", "demo", "--seed", "1"),
                *("--start-hour", str(start_hour), "--intervals", str(intervals)),
                *("--report", str(work / "report")),
            ],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "COLUMNS": "200"},
        )
        found = re.search(r"gridex verify: .*", done.stdout)
        demo_line = found.group(0) if found else "(the demo printed no verify line)"
        journal = work / "report" / "engine.db"
    started = time.perf_counter()
    folders = bundles_from_journal(journal, work / "bundles")
    bundles_s = time.perf_counter() - started
    started = time.perf_counter()
    before = sum(len(verify_bundle(folder)) for folder in folders)
    before_s = time.perf_counter() - started
    started = time.perf_counter()
    after = len(list(verify_folders(folders, feeders=_Feeders())))
    after_s = time.perf_counter() - started
    assert before == after
    return VerifyRow(len(folders), demo_line, bundles_s, before_s, after_s, after)


def print_verify(row: VerifyRow) -> None:
    print(f"\n## gridex verify of a demo day ({row.intervals} intervals)\n")
    if row.demo_line:
        print(f"demo: {row.demo_line}\n")
    print("| step | seconds | s/interval |")
    print("|---|---:|---:|")
    n = max(row.intervals, 1)
    print(f"| bundles written from the journal | {row.bundles_s:.1f} | {row.bundles_s / n:.2f} |")
    print(
        f"| verify, feeder loaded per bundle (before) | {row.before_s:.1f} | "
        f"{row.before_s / n:.2f} |"
    )
    print(
        f"| verify, each feeder loaded once (after) | {row.after_s:.1f} | {row.after_s / n:.2f} |"
    )
    print(f"\ndifferences found: {row.differences}; load: {os.getloadavg()[0]:.2f} (1 min)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=["gas", "verify"])
    parser.add_argument("--journal", type=Path, help="verify this engine journal (no demo run)")
    parser.add_argument("--start-hour", type=int, default=10)
    parser.add_argument("--intervals", type=int, default=8)
    args = parser.parse_args()
    if args.only != "verify":
        gas_and_speed()
    if args.only != "gas":
        row = measure_verify(args.journal, start_hour=args.start_hour, intervals=args.intervals)
        print_verify(row)


def gas_and_speed() -> None:
    print("## Gas per trade: one netted settlement vs one ERC-20 transfer per trade\n")
    print(
        "| trades N | accounts netted | netted gas (1 tx) "
        "| gas/trade netted | gas/trade ERC-20 | ratio |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    rows = [measure_gas(n, distinct=False, seed=n) for n in SIZES]
    rows.append(measure_gas(100, distinct=True, seed=1))
    for row in rows:
        netted = row.netted_gas / row.trades
        erc20 = row.transfer_gas / row.trades
        print(
            f"| {row.label} | {row.accounts} | {row.netted_gas:,} | {netted:,.0f} | "
            f"{erc20:,.0f} | {erc20 / netted:.1f}× |"
        )

    print("\n## Provisional and reconciliation postings (N = 100 trades)\n")
    print("| posting | accounts | gas (1 tx) | gas/trade |")
    print("|---|---:|---:|---:|")
    post = measure_postings(100, seed=5)
    print(
        f"| provisional (settle, v0) | {post.provisional_accounts} | "
        f"{post.provisional_gas:,} | {post.provisional_gas / post.trades:,.0f} |"
    )
    print(
        f"| reconciliation (correct, v1, the difference) | {post.correction_accounts} | "
        f"{post.correction_gas:,} | {post.correction_gas / post.trades:,.0f} |"
    )
    print(f"| advance (finality watermarks) | - | {post.advance_gas:,} | - |")

    print(f"\n## Settlements per second ({SPEED_ACCOUNTS} accounts each, SettlementDriver)\n")
    print("| chain | settlements | seconds | settlements/s | ms each | gas each |")
    print("|---|---:|---:|---:|---:|---:|")
    speeds = [measure_speed(Chain.embedded(), "embedded (eth-tester/py-evm)")]
    with HardhatNode() as node:
        speeds.append(
            measure_speed(Chain.connect(node.url, operator_key=HARDHAT_DEV_KEYS[0]), "Hardhat node")
        )
    for speed in speeds:
        per_s = speed.settlements / speed.seconds
        print(
            f"| {speed.chain} | {speed.settlements} | {speed.seconds:.2f} | {per_s:.1f} | "
            f"{1000 / per_s:.0f} | {speed.gas_each:,} |"
        )


if __name__ == "__main__":
    main()
