"""`python -m lightning_ser` is the `lightning-ser` command."""

import sys

from .cli import main

sys.exit(main())
