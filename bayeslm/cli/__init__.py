"""The ``bayeslm`` command line."""

from bayeslm.cli.main import main

__all__ = ["main"]
