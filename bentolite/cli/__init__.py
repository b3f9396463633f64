"""The ``bentolite`` command. Each command group lives in its own module here."""
from __future__ import annotations

import logging
import os
import sys
from typing import Any

import click

from ..exceptions import BentoMLException, StateException

__all__ = ["main", "cli"]


class _Group(click.Group):
    """Turns our errors into one clear line and a non-zero exit, without a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (BentoMLException, StateException, ValueError, OSError) as e:
            if os.environ.get("BENTOLITE_DEBUG"):
                raise
            message = getattr(e, "message", None) or str(e)
            message = " ".join(message.split())  # one line, whatever the error's layout
            click.secho(f"Error: {message}", fg="red", err=True)
            sys.exit(1)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="bentolite", prog_name="bentolite")
def cli() -> None:
    """bentolite: serve BentoML runner-era (v1) services."""
    from ..logs import configure_logging

    configure_logging("%(asctime)s %(levelname)s %(name)s: %(message)s")


def _register() -> None:
    from .bentos import register as register_bentos
    from .models import models

    cli.add_command(models)
    register_bentos(cli)
    try:  # serving commands live in their own module
        from .serve import register
    except ImportError:
        return
    register(cli)


_register()


def main() -> None:
    cli(prog_name="bentolite")
