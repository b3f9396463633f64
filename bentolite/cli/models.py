"""``bentolite models ...``: list, get, delete, export and import stored models."""
from __future__ import annotations

from typing import Any

import click

from ..models import Model, default_store, export_model, import_model
from ._output import delete_tags, human_size, print_item, print_listing, with_progress

__all__ = ["models"]


def _summary(model: Model) -> dict[str, Any]:
    return {
        "tag": str(model.tag),
        "module": model.info.module,
        "size": human_size(model.file_size),
        "creation_time": model.creation_time.astimezone().strftime("%Y-%m-%d %H:%M:%S"),
    }


@click.group()
def models() -> None:
    """Manage the model store ($BENTOLITE_HOME/models)."""


@models.command("list")
@click.argument("name", required=False)
@click.option("-o", "--output", type=click.Choice(["table", "json", "yaml"]), default="table")
def list_models(name: str | None, output: str) -> None:
    """List models, newest first (all, or the versions of NAME)."""
    found = sorted(default_store().list(name), key=lambda m: m.creation_time, reverse=True)
    print_listing([_summary(m) for m in found], {"Tag": "tag", "Module": "module", "Size": "size",
                  "Creation Time": "creation_time"}, output)


@models.command("get")
@click.argument("tag")
@click.option("-o", "--output", type=click.Choice(["yaml", "json", "path"]), default="yaml")
def get_model(tag: str, output: str) -> None:
    """Show a model's model.yaml (or its directory with -o path)."""
    model = default_store().get(tag)
    print_item(model.info.to_dict(), model.path, output)


@models.command("delete")
@click.argument("tags", nargs=-1, required=True)
@click.option("-y", "--yes", "--assume-yes", is_flag=True, help="Do not ask for confirmation.")
def delete_models(tags: tuple[str, ...], yes: bool) -> None:
    """Delete models. A TAG without a version deletes every version of that name."""
    delete_tags(default_store(), tags, yes)


@models.command("export")
@click.argument("tag")
@click.argument("out_path", required=False, default="")
@click.option("--format", "output_format", default=None, help="bentomodel, gz, xz, bz2, tar, zip or folder.")
def export(tag: str, out_path: str, output_format: str | None) -> None:
    """Export a model to OUT_PATH (default: ./<name>-<version>.bentomodel)."""
    written = with_progress(f"Exporting {tag}", lambda progress: export_model(
        tag, out_path, output_format, progress=progress))
    click.echo(f"Exported {tag} to {written}")


@models.command("import")
@click.argument("path")
def import_(path: str) -> None:
    """Import a model archive (.bentomodel, tar, zip) or folder into the store."""
    model = import_model(path)
    click.echo(f"Imported {model.tag}")
