"""`python -m lightning_ser` is the `lightning-ser` command."""

from .cli import main

main()
