"""`depotwatch ip-allow -c CONFIG`: the systemd drop-in that lets the daemon reach only the hosts
its config names (IPAddressDeny=any plus an IPAddressAllow= per address, systemd.resource-
control(5)), so a compromised daemon cannot open connections anywhere else."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import ipaddress
import socket
import sys
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from daemon.cli.subcommand import Commands, add_config_option, read_config
from daemon.vocabulary.errors import EXIT_CONFIG

__all__ = ["DROP_IN", "add_ip_allow_command", "configured_hosts", "ip_allow", "not_allowed"]

DROP_IN = "/etc/systemd/system/depotwatch.service.d/ip-allow.conf"
_URL_KEYS = ("url", "urls")


def configured_hosts(tree: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(config path, host) of every server the config names: `host` keys and the hosts of
    `url`/`urls` values, at any depth (MQTT, InfluxDB, webhook, Alertmanager, e-mail)."""
    if isinstance(tree, dict):
        if tree.get("type") == "apprise":
            return  # its URLs name a service, not always a host: see ip_allow
        for key, value in tree.items():
            where = f"{path}.{key}" if path else str(key)
            if key == "host" and isinstance(value, str):
                yield where, value
            elif key in _URL_KEYS:
                for number, url in enumerate(value if isinstance(value, list) else [value]):
                    host = urllib.parse.urlsplit(str(url)).hostname
                    if host:
                        yield (f"{where}[{number}]" if isinstance(value, list) else where), host
            else:
                yield from configured_hosts(value, where)
    elif isinstance(tree, list):
        for number, item in enumerate(tree):
            yield from configured_hosts(item, f"{path}[{number}]")


def _addresses(host: str) -> list[str]:
    """The host's addresses (itself if it is one); raises OSError if it does not resolve."""
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        found = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
        return sorted({str(info[4][0]) for info in found})


def _nameservers(resolv_conf: Path) -> list[str]:
    """DNS servers the daemon must reach to resolve the hosts (loopback ones need nothing)."""
    try:
        lines = resolv_conf.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    servers = [line.split()[1] for line in lines if line.startswith("nameserver ")
               and len(line.split()) > 1]
    return [s for s in servers if not ipaddress.ip_address(s.split("%")[0]).is_loopback]


def ip_allow(config: Any, extra: list[str], resolv_conf: Path = Path("/etc/resolv.conf")
             ) -> tuple[str, list[str]]:
    """The drop-in's text and the warnings to print; raises OSError for a host that does not
    resolve (an allow list without it would cut that server off)."""
    lines = [f"# {DROP_IN}", f"# written by `depotwatch ip-allow` on {dt.date.today()}: run it "
             "again after changing a server in the config", "[Service]", "IPAddressDeny=any",
             "# the local broker, the API on loopback, systemd-resolved",
             "IPAddressAllow=localhost"]
    warnings = []
    for where, host in configured_hosts(config.model_dump(mode="json")):
        lines += [f"# {where}: {host}", *(f"IPAddressAllow={a}" for a in _addresses(host))]
    servers = _nameservers(resolv_conf)
    if servers:
        lines += ["# DNS (/etc/resolv.conf)", *(f"IPAddressAllow={s}" for s in servers)]
    for network in extra:
        lines += ["# --allow", f"IPAddressAllow={ipaddress.ip_network(network, strict=False)}"]
    if not ipaddress.ip_address(_loopback_or(config.api.listen_host)).is_loopback and not extra:
        warnings.append(f"api.listen_host is {config.api.listen_host}: officers' browsers and "
                        "scrapers are refused too unless their networks are given with --allow")
    if any(n.type == "apprise" for n in config.notifiers):
        warnings.append("an apprise notifier's services are not hosts in the config: give their "
                        "addresses with --allow, or leave this drop-in out")
    return "\n".join(lines) + "\n", warnings


def _allowed(text: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """The networks a drop-in's IPAddressAllow= lines name (systemd's words included)."""
    words = {"any": ["0.0.0.0/0", "::/0"], "localhost": ["127.0.0.0/8", "::1/128"],
             "link-local": ["169.254.0.0/16", "fe80::/64"], "multicast": ["224.0.0.0/4",
                                                                         "ff00::/8"]}
    networks = []
    for line in text.splitlines():
        if line.startswith("IPAddressAllow="):
            for item in line.split("=", 1)[1].split():
                for network in words.get(item, [item]):
                    with contextlib.suppress(ValueError):
                        networks.append(ipaddress.ip_network(network, strict=False))
    return networks


def not_allowed(config: Any, drop_in: Path) -> list[str]:
    """Servers of the config that an installed ip-allow drop-in would cut off (none if there
    is no drop-in): `check-config` warns of each, since the notifiers may be among them."""
    try:
        networks = _allowed(drop_in.read_text(encoding="utf-8"))
    except OSError:
        return []
    problems = []
    for where, host in configured_hosts(config.model_dump(mode="json")):
        try:
            addresses = _addresses(host)
        except OSError as exc:
            problems.append(f"{where}: {host} does not resolve ({exc})")
            continue
        cut_off = [a for a in addresses
                   if not any(ipaddress.ip_address(a) in n for n in networks)]
        if cut_off:
            problems.append(f"{where}: {host} ({', '.join(cut_off)}) is not allowed by "
                            f"{drop_in}: run `depotwatch ip-allow` again")
    return problems


def _loopback_or(host: str) -> str:
    """An address to judge the API's listen host by (a name counts as not loopback)."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return "127.0.0.1" if host == "localhost" else "0.0.0.0"


def _ip_allow(args: argparse.Namespace) -> int:
    config = read_config(args.config)
    if config is None:
        return EXIT_CONFIG
    try:
        text, warnings = ip_allow(config, args.allow)
    except OSError as exc:
        print(f"a configured host does not resolve ({exc}); no drop-in written", file=sys.stderr)
        return 1
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(text, end="")
    return 0


def add_ip_allow_command(commands: Commands) -> None:
    """`depotwatch ip-allow -c CONFIG [--allow CIDR ...]`."""
    command = commands.add_parser(
        "ip-allow", help="print the systemd drop-in allowing only the configured servers' "
        "addresses (IPAddressDeny=any)",
        epilog=f"Install it as {DROP_IN} and run systemctl daemon-reload (deploy/install.sh "
               "--ip-allow does both). Names are resolved now: run it again when a server's "
               "address changes. Exit 1 if a host does not resolve.")
    add_config_option(command)
    command.add_argument("--allow", action="append", default=[], metavar="CIDR",
                         help="also allow this network (officers' LAN for the API, an apprise "
                              "service); repeat as needed")
    command.set_defaults(func=_ip_allow)
