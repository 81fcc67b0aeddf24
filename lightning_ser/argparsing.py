"""The argument parser of the argparse-based commands (`predict`, `embed`, `export`, `cv`,
`sweep`, `download`): a wrong command line ends in one line and status 1, as every other error
of `lightning-ser` does, instead of argparse's usage block and status 2."""

from __future__ import annotations

import argparse
from typing import NoReturn


class ArgumentParser(argparse.ArgumentParser):
    """argparse.ArgumentParser whose errors are raised (main() prints them in one line);
    `--help` still prints the usage and exits 0."""

    def error(self, message: str) -> NoReturn:
        command = self.prog.removeprefix("lightning-ser ")  # main() says "lightning-ser: error:"
        raise ValueError(f"{command}: {message} (`{self.prog} --help` lists the options)")
