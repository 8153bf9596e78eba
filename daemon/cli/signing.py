"""`depotwatch keys` (the gateway's signing key) and `depotwatch verify` (a signed report)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from daemon.cli.subcommand import Commands, add_actions, add_config_option, read_config
from daemon.vocabulary.errors import EXIT_CONFIG

__all__ = ["add_signing_commands"]


def _keys(args: argparse.Namespace) -> int:
    from daemon.records.signing import GatewayKey, SignatureError, key_id, key_path

    config = read_config(args.config)
    if config is None:
        return EXIT_CONFIG
    path = key_path(config.state_dir)
    try:
        key = GatewayKey.load_or_create(path) if args.action == "init" else GatewayKey.load(path)
    except (SignatureError, OSError) as exc:
        print(f"{exc}" + ("" if path.exists() else " (make it with `depotwatch keys init`)"),
              file=sys.stderr)
        return 1
    print(key.public_pem(), end="")
    print(f"key id {key_id(key.public)} ({path})", file=sys.stderr)
    return 0


def _verify(args: argparse.Namespace) -> int:
    from daemon.records.signing import (
        SignatureError,
        is_digest,
        signature_path,
        verify_digest,
        verify_document,
    )

    document = Path(args.report)
    signature = Path(args.signature) if args.signature else signature_path(document)
    audit = Path(args.audit) if args.audit else None
    try:
        key = Path(args.key).read_bytes()
        problems = (verify_digest(document, key, audit) if is_digest(document)
                    else verify_document(document, signature, key, audit))
    except (SignatureError, OSError) as exc:
        print(f"cannot verify: {exc}", file=sys.stderr)
        return 2
    for problem in problems:
        print(problem)
    if problems:
        print(f"{document}: FAILS verification", file=sys.stderr)
        return 1
    print(f"{document}: signature good" + (", audit log agrees" if args.audit else ""))
    return 0


def add_signing_commands(commands: Commands) -> None:
    """`depotwatch keys init|show -c CONFIG` and `depotwatch verify REPORT --key PUBKEY`."""
    keys = commands.add_parser(
        "keys", help="the gateway's Ed25519 key that signs reports and audit digests: init "
        "makes it if missing, show prints the public key for inspectors and HQ")
    actions = add_actions(keys)
    for action, words in (("init", "make the signing key if there is none, print its public "
                                   "key (PEM)"),
                          ("show", "print the public key (PEM) for inspectors and HQ")):
        add_config_option(actions.add_parser(action, help=words))
    keys.set_defaults(func=_keys)
    verify = commands.add_parser(
        "verify", help="check a signed report (its REPORT.sig) or a daily audit digest against "
        "the gateway's public key, and optionally against the audit log; exit 1 names what "
        "fails (deploy/verify_report.py does the same without depotwatch)")
    verify.add_argument("report", metavar="REPORT")
    verify.add_argument("--key", required=True, help="the gateway's public key (PEM)")
    verify.add_argument("--signature", help="default: REPORT.sig")
    verify.add_argument("--audit", help="the audit log (audit.jsonl) the report was made from")
    verify.set_defaults(func=_verify)
