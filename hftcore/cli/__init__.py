"""The ``hftcore`` command.

This package is the top layer: one module per command group, each with a
``register(cli)`` that adds its commands, so this file stays a table of contents. Nothing
below ``cli/`` imports it.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from hftcore._version import __version__
from hftcore.errors import HftcoreError

# Modules that define ``register(cli)``; each adds its commands.
_COMMAND_MODULES = (
    "hftcore.cli.demo",  # hftcore demo
    "hftcore.cli.itch",  # hftcore itch simulate | stats | dump | book | bbo
    "hftcore.cli.itch_wire",  # hftcore itch serve | listen
    "hftcore.cli.binance",  # hftcore binance simulate | stats | serve | watch | replay
    "hftcore.cli.feed",  # hftcore feed check | bench | capture-info | to-ndjson
    "hftcore.cli.export",  # hftcore itch to-parquet | lobster | list | fetch, binance to-parquet
)


class CommandLine:
    """Builder handed to each command module: top-level commands and named groups."""

    def __init__(self, parser: argparse.ArgumentParser):
        self.parser = parser
        self.top = parser.add_subparsers(dest="command", metavar="COMMAND")
        self._groups: dict[str, argparse._SubParsersAction] = {}

    def group(self, name: str, help: str, description: str | None = None):
        """Subparsers of ``hftcore NAME ...``, created on first use."""
        if name not in self._groups:
            p = self.top.add_parser(
                name,
                help=help,
                description=description or help,
                formatter_class=argparse.RawDescriptionHelpFormatter,
            )
            self._groups[name] = p.add_subparsers(dest="subcommand", metavar="SUBCOMMAND")
            p.set_defaults(func=lambda args, p=p: p.print_help() or 2)
        return self._groups[name]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hftcore",
        description=(
            "Market-data tools: decode NASDAQ ITCH 5.0 and Binance data, build order books,\n"
            "run simulated exchanges and measure feed latency.\n\n"
            "Start with `hftcore demo` (offline), then `hftcore itch --help` or\n"
            "`hftcore binance --help`."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"hftcore {__version__}")
    cli = CommandLine(parser)
    for name in _COMMAND_MODULES:
        importlib.import_module(name).register(cli)
    return parser


def main(argv=None) -> int:
    """Entry point of the ``hftcore`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        rc = args.func(args)
    except HftcoreError as e:
        print(f"hftcore: error: {e}", file=sys.stderr)
        return 1
    except FileNotFoundError as e:
        print(f"hftcore: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `hftcore itch dump ... | head`
        return 0
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
