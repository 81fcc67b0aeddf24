"""Command line: `lightning` / `lightning-ser` / `python -m lightning_ser`.

`fit`, `validate`, `test` and `predict -c CONFIG` are LightningCLI's (`lightning_cli.py`); the
other subcommands are tools of this project (`cache`, `download`, `predict --ckpt ...` for Phase
III inference, `embed`, `export`, `cv`, `sweep`; `tools.py`). `main(args)` runs in-process, so
tests drive the real CLI. A mistake a user can make ends in one line naming the file or setting
and a non-zero exit status; `--debug` (or LIGHTNING_SER_DEBUG=1) shows the full traceback.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from . import tools
from .lightning_cli import lightning_main


def dispatch(args: list[str] | None = None) -> Any:
    """Run one command and return what it made (the LightningCLI, a summary, an exit status)."""
    argv = list(sys.argv[1:] if args is None else args)
    command = argv[0] if argv else None
    if command in (None, "-h", "--help"):
        print(tools.top_level_help())
        return 0 if command else 2

    if command in tools.COMMANDS and not (
        command == "predict" and tools.is_lightning_predict(argv)
    ):
        return tools.COMMANDS[command](argv[1:])
    return lightning_main(argv)


def main(args: list[str] | None = None) -> int:
    """Entry point of the `lightning` and `lightning-ser` commands: returns the exit status.

    An error ends in one line on stderr (exit status 1); `--debug` anywhere on the command line,
    or LIGHTNING_SER_DEBUG=1, lets the traceback through instead.
    """
    argv = list(sys.argv[1:] if args is None else args)
    debug = "--debug" in argv or os.environ.get("LIGHTNING_SER_DEBUG", "") not in ("", "0")
    argv = [a for a in argv if a != "--debug"]
    try:
        result = dispatch(argv)
    except KeyboardInterrupt:
        print("lightning-ser: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - the one place that turns errors into one line
        if debug:
            raise
        print(f"lightning-ser: error: {one_line(err)} (--debug shows where)", file=sys.stderr)
        return 1
    return result if isinstance(result, int) and not isinstance(result, bool) else 0


#: How jsonargparse begins the error of a `class_path` setting (model, data) whose class refused
#: its arguments; the class's own message is one of the "- " lines that follow.
UNION_ERROR = "Does not validate against any of the Union subtypes"


def one_line(err: BaseException) -> str:
    """The first line of an error's message (its type when it has none), without torch's advice
    to load checkpoints with weights_only=False. For a model or data setting that its class
    refused, the class's own message (jsonargparse puts it under a generic first line)."""
    while err.__cause__ is not None and not str(err).strip():
        err = err.__cause__
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    text = lines[0] if lines else type(err).__name__
    if text.startswith(UNION_ERROR):  # nested settings (data.features.*) nest the same way
        skip = (UNION_ERROR, "Expected a <class 'NoneType'>")
        reasons = [
            line[2:] for line in lines if line.startswith("- ") and not line[2:].startswith(skip)
        ]
        text = reasons[0] if reasons else text
    return text.split("weights_only=False")[0].rstrip(" ,;:(") if "weights_only" in text else text


if __name__ == "__main__":
    sys.exit(main())
