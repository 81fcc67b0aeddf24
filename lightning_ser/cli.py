"""Command line: `lightning` / `lightning-ser` / `python -m lightning_ser`.

`fit`, `validate`, `test` and `predict -c CONFIG` are LightningCLI's (`lightning_cli.py`); the
other subcommands are tools of this project (`cache`, `download`, `predict --ckpt ...` for Phase
III inference, `embed`, `export`, `cv`, `sweep`; `tools.py`). `main(args)` runs in-process, so
tests drive the real CLI. A mistake a user can make ends in one line naming the file or setting
and a non-zero exit status; `--debug` (or LIGHTNING_SER_DEBUG=1) shows the full traceback.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

import torch.distributed as dist
from pytorch_lightning.utilities.exceptions import SIGTERMException

from . import runs, tools
from .lightning_cli import RUN_DIR_ENV, SERCLI, lightning_main


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
    known = [*SERCLI.subcommands(), *tools.COMMANDS]
    if command not in known and not command.startswith("-"):
        raise ValueError(
            f"unknown command {command!r}: one of {', '.join(dict.fromkeys(known))} "
            "(`lightning-ser --help` says what each does)"
        )
    return lightning_main(argv)


def stop_status(err: BaseException) -> int | None:
    """The exit status of a command stopped from outside, None for any other exception: 130 for
    Ctrl-C (Lightning turns it into exit(1)), 143 for SIGTERM (`kill`, `docker stop`, a batch
    system's time limit), which Lightning turns into a SIGTERMException, a SystemExit whose
    status would otherwise be 0, as if the training had finished."""
    if isinstance(err, KeyboardInterrupt) or isinstance(err.__context__, KeyboardInterrupt):
        return 130
    if isinstance(err, SIGTERMException):
        return 143
    return None


def interrupted(command: str = "fit", status: int = 130) -> str:
    """What an interrupted command says: how to resume the run it was training, if any."""
    what = "stopped by SIGTERM" if status == 143 else "interrupted"
    if command in ("cv", "sweep", "experiment"):
        return (
            f"lightning-ser: {what}; the same {command} command resumes it (finished runs "
            "are skipped, the interrupted one goes on from its last.ckpt)"
        )
    folder = os.environ.get(RUN_DIR_ENV)
    last = Path(folder) / "checkpoints" / "last.ckpt" if folder else None
    if last is not None and last.is_file():
        how = f"the same command with --ckpt_path {last} resumes it"
    else:
        how = "no checkpoint was written yet: run the command again"
    return f"lightning-ser: {what}; {how} (cv and sweep resume by themselves)"


def release_process_group() -> None:
    """Destroy the process group a DDP command left behind (Lightning leaves it open). Without
    this, gloo's worker threads can outlive the interpreter and abort the process at exit
    ("terminate called without an active exception", status -6) after a command that succeeded.
    Only after success: destroying it while another rank still communicates would hang."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def main(args: list[str] | None = None) -> int:
    """Entry point of the `lightning` and `lightning-ser` commands: returns the exit status.

    An error ends in one line on stderr (exit status 1); `--debug` anywhere on the command line,
    or LIGHTNING_SER_DEBUG=1, lets the traceback through instead.
    """
    argv = list(sys.argv[1:] if args is None else args)
    debug = "--debug" in argv or os.environ.get("LIGHTNING_SER_DEBUG", "") not in ("", "0")
    argv = [a for a in argv if a != "--debug"]
    finished = False
    try:
        result = dispatch(argv)
        finished = True
    except BrokenPipeError:  # `... | head` stopped reading: what it wanted was printed
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit
        return 141  # 128 + SIGPIPE, as a shell reports a command that wrote to a closed pipe
    except (KeyboardInterrupt, SystemExit) as err:
        status = stop_status(err)
        if status is None:
            raise
        print(interrupted(argv[0] if argv else "", status), file=sys.stderr)
        return status
    except Exception as err:  # noqa: BLE001 - the one place that turns errors into one line
        if debug:
            raise
        print(f"lightning-ser: error: {one_line(err)} (--debug shows where)", file=sys.stderr)
        return 1
    finally:  # a failed start leaves no empty run folder; a finished one keeps its folder
        if finished:
            runs.CREATED.clear()
            release_process_group()
        else:
            runs.forget_empty_runs()
    return result if isinstance(result, int) and not isinstance(result, bool) else 0


#: How jsonargparse begins the error of a `class_path` setting (model, data) whose class refused
#: its arguments; the class's own message is one of the "- " lines that follow.
UNION_ERROR = "Does not validate against any of the Union subtypes"
#: The lines of a jsonargparse error that say nothing a user can act on.
_BOILERPLATE = (
    UNION_ERROR,
    "Subtypes:",
    "Errors:",
    "Problem with given class_path",
    "Given value type:",
    "Given value:",
    "Expected a <class 'NoneType'>",
    "Not a valid subclass of",  # a list of loggers or callbacks: the class's reason follows
    "Subclass types expect",
    "a class path (str)",
    "a dict with",
    "a dict without",
    "Expected a path but",
)
_NO_CLASS = "Expected a dot import path string: "
_PARSER_KEY = re.compile(r'^Parser key "([^"]+)":\s*(.*)$')
_EXPECTED = re.compile(r"^Expected an? (.+?)(?:\. Got value: (.*))?$")


def _type_name(text: str) -> str:
    """`<class 'int'>` -> int; `typing.Literal['a', 'b']` -> one of 'a', 'b'."""
    if text.startswith("typing.Literal[") and text.endswith("]"):
        return "one of " + text[len("typing.Literal[") : -1]
    return re.sub(r"<class '(?:[\w.]+\.)?(\w+)'>", r"\1", text)


def settings_error(message: str) -> str:
    """One line from jsonargparse's nested error of a setting: `model.layer: no such setting`,
    `trainer.max_epochs: expected int (or null), got abc`, or the class's own refusal."""
    path: list[str] = []
    expected: list[str] = []
    given = reason = None
    for raw in message.splitlines():
        line = raw.strip().removeprefix("- ")
        if (match := _PARSER_KEY.match(line)) and reason is None:
            path.append(match.group(1))
            line = match.group(2)
        if line.startswith("Given value:") and given is None:
            given = line.split(":", 1)[1].strip()
        if not line or reason is not None or line.startswith(_BOILERPLATE):
            continue
        if line.startswith(_NO_CLASS):
            reason = f"no such class {line.removeprefix(_NO_CLASS)!r}"
            continue
        if (match := _EXPECTED.match(line)) and match.group(2) is None:
            expected.append(_type_name(match.group(1)))  # one of a union's members
            continue
        reason = line
    key = ".".join(path)
    if reason is None:
        if not expected:
            return f"{key}: {message.strip().splitlines()[-1].strip()}"
        nullable = " (or null)" if "- Expected a <class 'NoneType'>" in message else ""
        return f"{key}: expected {' or '.join(expected)}{nullable}, got {given}"
    if option := re.match(r"^Option '([^']+)' is not accepted$", reason):
        return f"{key}.{option.group(1)}: no such setting (`--help` lists them)"
    if (match := _EXPECTED.match(reason)) and match.group(2) is not None:
        return f"{key}: expected {_type_name(match.group(1))}, got {match.group(2)}"
    return f"{key}: {reason}" if key and not reason.startswith(key) else reason


def one_line(err: BaseException) -> str:
    """The first line of an error's message (its type when it has none), without torch's advice
    to load checkpoints with weights_only=False. For a setting the parser or its class refused,
    the setting and the reason (jsonargparse nests them under generic lines)."""
    while err.__cause__ is not None and not str(err).strip():
        err = err.__cause__
    message = str(err).strip()
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    text = lines[0] if lines else type(err).__name__
    if text.startswith((UNION_ERROR, "Parser key ")):
        text = settings_error(message)
    return text.split("weights_only=False")[0].rstrip(" ,;:(") if "weights_only" in text else text


if __name__ == "__main__":
    sys.exit(main())
