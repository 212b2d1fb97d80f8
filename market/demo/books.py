"""The demo's books check: metered energy, trades, imbalance, settlement and chain agree.

Every interval is checked from the journal, independently of the engine's
own bookkeeping:

* the clearing, by :func:`market.clearing.audit.audit`: its grid exchange
  and losses equal the AC power flow of its schedule (to half a Wh), every
  amount is its fill's energy × price, no buyer pays above retail and no
  seller gets below feed-in, the operator's surplus is the residual, and the
  rounding stays within its stated bound;
* the settlement posted equals the one recomputed from the clearing result
  and the metered energy at the tariffs (imbalance included), carries the
  hash of that clearing result, and its balance changes sum to zero with
  the fee;
* on chain, every settled interval is recorded with the journaled result
  hash (the contract accepts an interval once), and every escrow balance
  equals its deposit plus the settled changes (plus the fees, for the
  operator).
"""

from __future__ import annotations

from grid import Feeder
from market.clearing import ClearingResult
from market.clearing.audit import audit
from market.demo.chain import DemoChain
from market.report import ReportData
from market.report.journal import JournalRun
from market.settlement import settle_interval

__all__ = ["check_books"]


def check_books(
    data: ReportData, chain: DemoChain, run: JournalRun, *, feeder: Feeder | None = None
) -> list[str]:
    """Every disagreement found (an empty list: the books balance to the last unit).

    ``feeder`` (the one the engine cleared on) enables the power-flow check
    of every interval's energy, at the base each interval was cleared
    against (its journaled base-load forecast, when it has one).
    """
    state = run.state
    problems: list[str] = []
    totals: dict[str, int] = {}
    fees = 0
    settled: dict[int, bytes] = {}
    for interval, s in sorted(state.intervals.items()):
        if s.clearing is None or not s.clearing.ok:
            continue
        result = ClearingResult.from_json(s.clearing.result_json)
        view = feeder
        if feeder is not None and s.clearing.base is not None:
            from market.forecast import BaseInterval

            view = BaseInterval.from_json(s.clearing.base).view(feeder)
        problems.extend(audit(result, view, run.market))
        if s.settlement is None:
            continue
        metered: dict[str, int] = {}
        for meter_id, (imp, exp, _) in (s.metered or {}).items():
            owner = state.meters[meter_id][1]
            metered[owner] = metered.get(owner, 0) + exp - imp
        traded: dict[str, int] = {}
        for f in result.fills:
            traded[f.participant] = traded.get(f.participant, 0) + (
                f.filled_wh if f.side == "sell" else -f.filled_wh
            )
        expected = settle_interval(
            interval,
            traded_wh=traded,
            payments={p.participant: p.amount for p in result.payments},
            operator_surplus=result.operator_surplus,
            metered_wh=metered,
            config=run.market,
            operator=run.operator_account,
            result_hash=s.clearing.result_hash,
        )
        posted = s.settlement
        # (each posting's hash is its manifest's, checked by `gridex verify` after this)
        # provisional plus reconciliations: together the settlement of the last metering
        fee = posted.fee + sum(c.fee for c in s.corrections)
        if dict(expected.deltas) != s.total_deltas() or expected.fee != fee:
            problems.append(
                f"interval {interval}: posted settlement differs from the recomputed one"
            )
        for record in (posted, *s.corrections):
            if sum(record.deltas.values()) + record.fee != 0:
                problems.append(
                    f"interval {interval} v{record.version}: posting does not sum to zero "
                    "with its fee"
                )
        for account, delta in s.total_deltas().items():
            totals[account] = totals.get(account, 0) + delta
        fees += fee
        settled[interval] = s.last_hash
    problems.extend(_chain_problems(chain, totals, fees, settled))
    reported = set(data.intervals["interval"].to_list())
    if not set(settled) <= reported:
        problems.append("report: the intervals table does not list every settled interval")
    return problems


def _chain_problems(
    chain: DemoChain, totals: dict[str, int], fees: int, settled: dict[int, bytes]
) -> list[str]:
    out = []
    # the contract accepts an interval once and records its result hash
    for interval, result_hash in settled.items():
        on_chain = chain.ledger.settled_hash(interval)
        if on_chain is None:
            out.append(f"interval {interval}: settled in the journal but not on chain")
        elif on_chain != result_hash:
            out.append(f"interval {interval}: on-chain result hash differs from the journal")
    accounts = set(chain.deposits) | set(totals)
    balances = chain.escrow_balances(accounts)
    for account in sorted(accounts):
        want = chain.deposits.get(account, 0) + totals.get(account, 0)
        if account == chain.operator:
            want += fees
        if balances[account] != want:
            out.append(f"escrow of {account}: {balances[account]} on chain, books say {want}")
    return out
