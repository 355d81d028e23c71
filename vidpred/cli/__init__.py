"""The `vidpred` command: parses options, calls library functions, prints results.

Errors a user can cause become one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading

from ..errors import SettingError, TrainingInterrupted, VidpredError, one_line, shown
from .bench import add_bench
from .cache import add_cache
from .console import LineHandler, stderr
from .evaluate import add_eval
from .gallery import add_gallery
from .generate import add_generate
from .render import add_render
from .train import add_train, fill_new_run_defaults


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vidpred",
        description="Train a next-frame predictor on your own videos and watch how well it does.",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and results")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_train(sub)
    add_render(sub)
    add_eval(sub)
    add_generate(sub)
    add_gallery(sub)
    add_cache(sub)
    add_bench(sub)
    return parser


_NOT_GIVEN = object()


def _subparser(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser:
    """Returns the parser of ``command``. (argparse has no public API for this; ``_actions``
    has been stable since Python 3.2.)"""
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return subparsers.choices[command]


def given_options(
    parser: argparse.ArgumentParser, argv: list[str] | None, command: str
) -> set[str]:
    """Returns the dests of the options of ``command`` that ``argv`` sets explicitly.

    argparse fills every missing option with its default, so its namespace cannot tell
    "--size 96" from no --size at all; parsing again with every default of the subcommand
    replaced by a marker can.
    """
    options = [
        a for a in _subparser(parser, command)._actions if a.option_strings and a.dest != "help"
    ]
    saved = [a.default for a in options]
    try:
        for action in options:
            action.default = _NOT_GIVEN
        marked, _ = parser.parse_known_args(argv)
    finally:
        for action, default in zip(options, saved, strict=True):
            action.default = default
    return {a.dest for a in options if getattr(marked, a.dest, _NOT_GIVEN) is not _NOT_GIVEN}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Returns the parsed command line; ``given`` holds the options it sets explicitly.

    ``given`` is the one record of what the user asked for: a resumed run changes only
    those settings, and a new run fills some defaults from other options. Exits with a usage
    error for options that are each valid but make no sense together.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    args.given = given_options(parser, argv, args.command)
    if args.command == "train" and args.resume is None:  # a resumed run keeps its own
        problem = fill_new_run_defaults(args)
        if problem:
            _subparser(parser, "train").error(problem)
    return args


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Under torchrun every rank runs this; only rank 0 logs anything short of an error.
    other_rank = os.environ.get("RANK", "0") != "0"
    logging.basicConfig(
        level=logging.ERROR if other_rank else logging.WARNING if args.quiet else logging.INFO,
        format="%(message)s",
        handlers=[LineHandler()],
    )
    # `kill` unwinds like Ctrl-C, so a stopped render removes its temp file instead of
    # leaving it behind (training installs its own handler and saves a checkpoint).
    on_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if on_main_thread else None
    # Outputs a command claims (vidpred.outputs.claim_output) are released when it ends,
    # however it ends.
    args.claims = contextlib.ExitStack()
    try:
        with args.claims:
            return args.func(args)
    except TrainingInterrupted as e:
        if not other_rank:  # every rank stops at the same step; one message is enough
            stderr.print(one_line(f"vidpred: {e}"), highlight=False, soft_wrap=True, markup=False)
        return 130
    except VidpredError as e:
        message = e.as_options() if isinstance(e, SettingError) else str(e)
        stderr.print(
            one_line(f"vidpred: error: {message}"), highlight=False, soft_wrap=True, markup=False
        )
        return 1
    except KeyboardInterrupt:
        stderr.print("vidpred: interrupted")
        return 130
    except OSError as e:  # the file system said no (disk full, permissions) somewhere unexpected
        where = f"{shown(e.filename)}: " if e.filename else ""
        stderr.print(f"vidpred: error: {where}{e.strerror or e}", highlight=False, markup=False)
        return 1
    finally:
        if on_main_thread:
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


if __name__ == "__main__":
    sys.exit(main())
