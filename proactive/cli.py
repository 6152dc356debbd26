"""The `proactive` command. Each subcommand lives in its own module exposing
`add_arguments(parser)` and `run(args) -> int`; modules are imported lazily so
that `proactive sign` does not pay for the server's imports."""

from __future__ import annotations

import argparse
import importlib
import sys

SUBCOMMANDS = {
    "serve": ("proactive.cmd_serve", "run the reference endpoint and the demo site"),
    "build": ("proactive.cmd_build", "build the static widget folder a site owner hosts"),
    "keygen": ("proactive.cmd_bundle", "create a signing key"),
    "sign": ("proactive.cmd_bundle", "sign a messages file into a bundle"),
    "pause": ("proactive.cmd_bundle", "the kill switch: re-sign a published bundle with every message paused"),
    "verify": ("proactive.cmd_bundle", "verify a bundle as the browser would"),
    "validate": ("proactive.cmd_bundle", "check a messages file and list every problem"),
    "schema": ("proactive.cmd_bundle", "print the JSON Schema of the messages format"),
    "simulate": ("proactive.cmd_simulate", "dry-run messages against a visitor journey"),
    "studio": ("proactive.cmd_studio", "edit, pause, simulate and publish messages in a local web page"),
    "db": ("proactive.cmd_db", "upgrade the endpoint's database schema, or show its version"),
}


class _HelpFormatter(argparse.HelpFormatter):
    """Every option's help ends with its default, unless it names it already."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "default" in text or action.default in (None, False, argparse.SUPPRESS) or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)" if text else "default: %(default)s"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="proactive", description="Proactive chat auto messages.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    wanted = argv[0] if argv and argv[0] in SUBCOMMANDS else None
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text, formatter_class=_HelpFormatter)
        if name == wanted:
            module = importlib.import_module(module_name)
            module.add_arguments(p, name) if _takes_name(module) else module.add_arguments(p)
            p.set_defaults(_run=module.run)
    args = parser.parse_args(argv)
    return int(args._run(args) or 0)


def _takes_name(module) -> bool:
    return getattr(module, "ADD_ARGUMENTS_TAKES_COMMAND", False)


if __name__ == "__main__":
    sys.exit(main())
