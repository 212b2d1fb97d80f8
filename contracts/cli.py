"""``gridex chain deploy|balances|settle-file``: the operator's chain commands.

::

    gridex chain deploy [--rpc-url URL --key FILE] [--out deployment.json]
    gridex chain balances --rpc-url URL --deployment deployment.json [ADDRESS ...]
    gridex chain settle-file SETTLEMENT.json --rpc-url URL --key FILE --deployment FILE

Without ``--rpc-url`` ``deploy`` uses a throw-away embedded chain (useful to
check that the contracts compile and deploy); the other two need a node.

``--key FILE`` holds the operator's private key as 0x-hex text, or an
encrypted JSON keystore whose password is in ``$GRIDEX_KEY_PASSWORD``.

``SETTLEMENT.json`` is one settlement or a list of them, as
``market.settlement.IntervalSettlement.to_json`` writes it (``"interval_id"``
is accepted for ``"interval"``)::

    {"interval": 42, "fee": 10000,
     "result_hash": "0x<64 hex digits>",
     "deltas": {"0xAbc...": -1250000, "0xDef...": 1240000}}

Amounts are token base units. Exit codes: 0 done, 1 chain error, 2 usage.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

    from contracts.chain import Chain

__all__ = ["read_key_file", "register"]

_KEY_PASSWORD_ENV = "GRIDEX_KEY_PASSWORD"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``chain`` command group to the ``gridex`` parser."""
    chain = sub.add_parser("chain", help="deploy and operate the settlement contracts")
    chain_sub = chain.add_subparsers(dest="chain_command", required=True, metavar="COMMAND")

    deploy = chain_sub.add_parser("deploy", help="deploy EnergyToken and Settlement")
    _connection_options(deploy, key_required=False)
    deploy.add_argument("--out", type=Path, help="write the deployment document here")
    deploy.add_argument("--operator", help="address allowed to settle (default: the key's)")
    deploy.add_argument("--token-name", default=None, help="ERC-20 name")
    deploy.add_argument("--token-symbol", default=None, help="ERC-20 symbol")
    deploy.set_defaults(func=_deploy)

    balances = chain_sub.add_parser("balances", help="print token and escrow balances")
    _connection_options(balances, key_required=False)
    _deployment_option(balances)
    balances.add_argument(
        "addresses", nargs="*", metavar="ADDRESS", help="default: every depositor and the operator"
    )
    balances.set_defaults(func=_balances)

    settle = chain_sub.add_parser("settle-file", help="settle the intervals in a JSON file")
    settle.add_argument("settlement_file", type=Path, metavar="SETTLEMENT.json")
    _connection_options(settle, key_required=True)
    _deployment_option(settle)
    settle.add_argument(
        "--timeout-s", type=float, default=30.0, help="wait per send before resending"
    )
    settle.set_defaults(func=_settle_file)


def _connection_options(parser: argparse.ArgumentParser, *, key_required: bool) -> None:
    parser.add_argument("--rpc-url", help="JSON-RPC node (default for deploy: embedded chain)")
    parser.add_argument(
        "--key", type=Path, required=key_required, help="file with the operator's private key"
    )
    parser.add_argument("--chain-id", type=int, help="refuse a node with another chain id")


def _deployment_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--deployment",
        type=Path,
        required=True,
        help="deployment document written by `gridex chain deploy --out`",
    )


def read_key_file(path: Path) -> LocalAccount:
    """The account in a key file: 0x-hex text, or a JSON keystore.

    Raises:
        ChainConfigError: unreadable, not a key, or a keystore without/with a
            wrong ``$GRIDEX_KEY_PASSWORD``.
    """
    from eth_account import Account

    from contracts.chain import load_account
    from contracts.errors import ChainConfigError

    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ChainConfigError(f"cannot read key file {path}: {exc}") from exc
    if text.startswith("{"):
        password = os.environ.get(_KEY_PASSWORD_ENV)
        if password is None:
            raise ChainConfigError(f"{path} is a keystore: set ${_KEY_PASSWORD_ENV}")
        try:
            key = Account.decrypt(json.loads(text), password)
        except ValueError as exc:
            raise ChainConfigError(f"cannot decrypt keystore {path}: {exc}") from exc
        return load_account(bytes(key))
    try:
        return load_account(text)
    except ChainConfigError as exc:
        raise ChainConfigError(f"key file {path}: {exc} (expected 0x-hex or a keystore)") from exc


def _open_chain(args: argparse.Namespace, *, embedded_ok: bool) -> Chain:
    from contracts.chain import Chain
    from contracts.errors import ChainConfigError

    key = read_key_file(args.key) if args.key is not None else None
    if args.rpc_url is None:
        if not embedded_ok:
            raise ChainConfigError(
                "--rpc-url is required: an embedded chain lives only inside one process"
            )
        return Chain.embedded(operator_key=key)
    return Chain.connect(args.rpc_url, operator_key=key, expected_chain_id=args.chain_id)


def _run(args: argparse.Namespace, body: Any) -> int:
    from contracts.errors import ChainError

    try:
        body(args)
    except ChainError as exc:
        print(f"gridex chain: error: {exc}", file=sys.stderr)
        return 1
    return 0


def _deploy(args: argparse.Namespace) -> int:
    def body(args: argparse.Namespace) -> None:
        from contracts.deployment import DEFAULT_TOKEN_NAME, DEFAULT_TOKEN_SYMBOL, deploy

        chain = _open_chain(args, embedded_ok=True)
        deployment = deploy(
            chain,
            operator=args.operator,
            token_name=args.token_name or DEFAULT_TOKEN_NAME,
            token_symbol=args.token_symbol or DEFAULT_TOKEN_SYMBOL,
        )
        if args.out is not None:
            deployment.save(args.out)
        if chain.kind == "embedded":
            print(
                "note: embedded chain; these contracts vanish when this command exits "
                "(use --rpc-url for a real node)",
                file=sys.stderr,
            )
        sys.stdout.write(deployment.to_json())

    return _run(args, body)


def _balances(args: argparse.Namespace) -> int:
    def body(args: argparse.Namespace) -> None:
        from contracts.deployment import Deployment
        from contracts.ledger import Ledger

        chain = _open_chain(args, embedded_ok=False)
        ledger = Ledger(chain, Deployment.load(args.deployment))
        addresses = list(args.addresses)
        if not addresses:
            addresses = [*ledger.depositors(), ledger.operator()]
        print(f"{'address':<42}  {'token':>20}  {'escrow':>20}")
        for address in dict.fromkeys(addresses):
            token = ledger.token_balance(address)
            escrow = ledger.escrow_balance(address)
            print(f"{address:<42}  {token:>20}  {escrow:>20}")
        print(f"{'escrow total':<42}  {'':>20}  {ledger.escrow_total():>20}")

    return _run(args, body)


def _settle_file(args: argparse.Namespace) -> int:
    def body(args: argparse.Namespace) -> None:
        from contracts.deployment import Deployment
        from contracts.driver import SettlementDriver
        from contracts.ledger import Ledger

        entries = _read_settlements(args.settlement_file)
        chain = _open_chain(args, embedded_ok=False)
        ledger = Ledger(chain, Deployment.load(args.deployment))
        driver = SettlementDriver(ledger, receipt_timeout_s=args.timeout_s)
        for entry in entries:
            receipt = driver.settle_interval(**entry)
            state = "already settled" if receipt.already_settled else "settled"
            print(
                f"interval {receipt.interval_id}: {state} in tx {receipt.tx_hash} "
                f"(block {receipt.block_number}, {receipt.accounts} accounts, "
                f"gas {receipt.gas_used})"
            )

    return _run(args, body)


def _read_settlements(path: Path) -> list[dict[str, Any]]:
    """The settlements in ``path`` as keyword arguments of ``settle_interval``.

    Raises:
        SettlementError: unreadable or malformed file.
    """
    from contracts.errors import SettlementError

    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SettlementError(f"cannot read {path}: {exc}") from exc
    items = data if isinstance(data, list) else [data]
    entries = []
    for index, item in enumerate(items):
        try:
            deltas = item["deltas"]
            if not isinstance(deltas, dict):
                raise TypeError("deltas must be an object of address: amount")
            interval_id = item["interval"] if "interval" in item else item["interval_id"]
            entries.append(
                {
                    "interval_id": interval_id,
                    "deltas": deltas,
                    "fee": item.get("fee", 0),
                    "result_hash": str(item["result_hash"]),
                }
            )
        except (KeyError, TypeError) as exc:
            raise SettlementError(f"{path}: settlement #{index} is malformed: {exc}") from exc
    return entries
