"""``gridex chain deploy|balances|settle-file|mint|deposit|withdraw|fund``: the chain commands.

::

    gridex chain deploy [--rpc-url URL --key FILE] [--out deployment.json]
    gridex chain balances --rpc-url URL --deployment deployment.json [ADDRESS ...]
    gridex chain settle-file SETTLEMENT.json --rpc-url URL --key FILE --deployment FILE
    gridex chain fund ADDRESS AMOUNT --rpc-url URL --key OPERATOR_KEY --deployment FILE
    gridex chain mint ADDRESS AMOUNT --rpc-url URL --key OWNER_KEY --deployment FILE
    gridex chain deposit AMOUNT [--for ADDRESS] --rpc-url URL --key FILE --deployment FILE
    gridex chain withdraw AMOUNT --rpc-url URL --key FILE --deployment FILE

``fund`` is the operator's one step to put tokens into a participant's escrow
(settlement debits escrow, so a participant that buys, and the operator's own
account that buys feed-in, must hold enough there): it mints AMOUNT to the
operator and pays it into ADDRESS's escrow with ``deposit_for``; ``--gas-wei``
also sends ETH for the participant's own later transactions (``withdraw``).
``mint``/``deposit``/``withdraw`` are the single steps, signed by ``--key``.

Without ``--rpc-url`` ``deploy`` uses a throw-away embedded chain (useful to
check that the contracts compile and deploy); the other two need a node.

``--key FILE`` is a key file as :mod:`gridex.keys` reads it (``gridex
keygen`` writes one): 0x-hex text with optional ``#`` comment lines, mode
0600, or an encrypted JSON keystore whose password is in
``$GRIDEX_KEY_PASSWORD``.

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
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

    from contracts.chain import Chain

__all__ = ["read_key_file", "register"]


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

    _register_funding(chain_sub)


def _register_funding(chain_sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``mint``, ``deposit``, ``withdraw`` and ``fund``: getting tokens into escrow."""
    mint = chain_sub.add_parser(
        "mint", help="mint tokens to an address (the key must own the token contract)"
    )
    mint.add_argument("address", metavar="ADDRESS", help="receiver of the tokens")
    mint.add_argument("amount", type=_amount, metavar="AMOUNT", help="token base units")
    _connection_options(mint, key_required=True)
    _deployment_option(mint)
    mint.set_defaults(func=_mint)

    deposit = chain_sub.add_parser(
        "deposit", help="move the key's tokens into escrow (its own, or --for an address)"
    )
    deposit.add_argument("amount", type=_amount, metavar="AMOUNT", help="token base units")
    deposit.add_argument("--for", dest="account", metavar="ADDRESS", help="escrow to pay into")
    _connection_options(deposit, key_required=True)
    _deployment_option(deposit)
    deposit.set_defaults(func=_deposit)

    withdraw = chain_sub.add_parser(
        "withdraw",
        help="ask to move tokens from the key's escrow back (time-locked), or --execute it",
    )
    withdraw.add_argument(
        "amount", type=_amount, metavar="AMOUNT", nargs="?", help="token base units to request"
    )
    withdraw.add_argument(
        "--execute",
        action="store_true",
        help="pay out the pending request (once every interval it waits for is final)",
    )
    _connection_options(withdraw, key_required=True)
    _deployment_option(withdraw)
    withdraw.set_defaults(func=_withdraw)

    fund = chain_sub.add_parser(
        "fund",
        help="operator: mint AMOUNT and pay it into ADDRESS's escrow (and send gas money)",
    )
    fund.add_argument("address", metavar="ADDRESS", help="participant (or operator) to fund")
    fund.add_argument("amount", type=_amount, metavar="AMOUNT", help="token base units")
    fund.add_argument(
        "--gas-wei",
        type=int,
        default=0,
        metavar="WEI",
        help="also send this much ETH for the address's own transactions (default 0)",
    )
    _connection_options(fund, key_required=True)
    _deployment_option(fund)
    fund.set_defaults(func=_fund)


def _amount(text: str) -> int:
    """A token amount flag: a positive integer of base units.

    Raises:
        argparse.ArgumentTypeError: not a positive integer.
    """
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer of base units, got {text!r}"
        ) from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


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
    """The account in a key file, in the one format of :mod:`gridex.keys`.

    Plain text (comment lines allowed, ``0x`` optional, mode 0600) or an
    encrypted JSON keystore whose password is in ``$GRIDEX_KEY_PASSWORD`` (or
    typed at a prompt on a terminal).

    Raises:
        ChainConfigError: unreadable, too open, not a key, or a keystore
            without/with a wrong password.
    """
    from gridex.keys import KeyFileError, read_private_key

    from contracts.chain import load_account
    from contracts.errors import ChainConfigError

    try:
        return load_account(read_private_key(path))
    except KeyFileError as exc:
        raise ChainConfigError(str(exc)) from None


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


def _ledger(args: argparse.Namespace) -> Any:
    from contracts.deployment import Deployment
    from contracts.ledger import Ledger

    return Ledger(_open_chain(args, embedded_ok=False), Deployment.load(args.deployment))


def _address_arg(value: str) -> str:
    from contracts.errors import ChainConfigError
    from contracts.ledger import checksum_address

    try:
        return checksum_address(value)
    except ChainConfigError:
        raise ChainConfigError(
            f"ADDRESS: must be 0x followed by 40 hex digits, got {value!r}"
        ) from None


def _balance_line(ledger: Any, address: str) -> str:
    token, escrow = ledger.token_balance(address), ledger.escrow_balance(address)
    return f"{address.lower()}: token {token}, escrow {escrow}"


def _mint(args: argparse.Namespace) -> int:
    def body(args: argparse.Namespace) -> None:
        address = _address_arg(args.address)
        ledger = _ledger(args)
        receipt = ledger.mint(address, args.amount)
        print(f"minted {args.amount} to {address.lower()} in tx {_tx(receipt)}")
        print(_balance_line(ledger, address))

    return _run(args, body)


def _deposit(args: argparse.Namespace) -> int:
    def body(args: argparse.Namespace) -> None:
        ledger = _ledger(args)
        payer = ledger.chain.operator.address
        if args.account is None:
            receipt = ledger.deposit(args.amount)
            account = payer
        else:
            account = _address_arg(args.account)
            receipt = ledger.deposit_for(account, args.amount)
        print(f"deposited {args.amount} into the escrow of {account.lower()} in tx {_tx(receipt)}")
        print(_balance_line(ledger, account))

    return _run(args, body)


def _withdraw(args: argparse.Namespace) -> int:
    def body(args: argparse.Namespace) -> None:
        ledger = _ledger(args)
        from contracts.errors import ChainConfigError

        account = ledger.chain.operator.address
        if args.execute == (args.amount is not None):
            raise ChainConfigError("withdraw: give AMOUNT to request a withdrawal, or --execute")
        if args.execute:
            pending = ledger.pending_withdrawal(account)
            receipt = ledger.execute_withdrawal()
            print(
                f"withdrew up to {pending} from the escrow of {account.lower()} "
                f"in tx {_tx(receipt)}"
            )
        else:
            receipt = ledger.request_withdrawal(args.amount)
            print(
                f"requested {args.amount} from the escrow of {account.lower()} "
                f"in tx {_tx(receipt)}; "
                "run withdraw --execute once the intervals you may be in are final"
            )
        print(_balance_line(ledger, account))

    return _run(args, body)


def _fund(args: argparse.Namespace) -> int:
    def body(args: argparse.Namespace) -> None:
        from contracts.errors import ChainConfigError

        if args.gas_wei < 0:
            raise ChainConfigError(f"--gas-wei: must be >= 0, got {args.gas_wei}")
        account = _address_arg(args.address)
        ledger = _ledger(args)
        operator = ledger.chain.operator.address
        ledger.mint(operator, args.amount)
        ledger.deposit_for(account, args.amount)
        if args.gas_wei:
            ledger.chain.fund(account, args.gas_wei)
        gas = f" and {args.gas_wei} wei for gas" if args.gas_wei else ""
        print(f"funded {account.lower()} with {args.amount} in escrow{gas}")
        print(_balance_line(ledger, account))

    return _run(args, body)


def _tx(receipt: Any) -> str:
    tx_hash = receipt["transactionHash"]
    return "0x" + bytes(tx_hash).hex().removeprefix("0x")


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
