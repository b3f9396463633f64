"""``bentolite models ...``: list, get, delete, export and import stored models."""
from __future__ import annotations

import json
from typing import Any

import click
import yaml

from ..models import Model, default_store, export_model, import_model
from ..tag import Tag

__all__ = ["models"]


def _human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.2f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _summary(model: Model) -> dict[str, Any]:
    return {
        "tag": str(model.tag),
        "module": model.info.module,
        "size": _human_size(model.file_size),
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
    rows = [_summary(m) for m in found]
    if output == "json":
        click.echo(json.dumps(rows, indent=2))
    elif output == "yaml":
        click.echo(yaml.safe_dump(rows, sort_keys=False), nl=False)
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(box=None, header_style="bold")
        for column in ("Tag", "Module", "Size", "Creation Time"):
            table.add_column(column, no_wrap=True)
        for row in rows:
            table.add_row(row["tag"], row["module"], row["size"], row["creation_time"])
        console = Console(soft_wrap=True)
        # never cut a tag short: users copy them; a wide table may wrap in the terminal
        needed = console.measure(table, options=console.options.update(width=10_000)).maximum
        console.width = max(console.width, needed)
        console.print(table)


@models.command("get")
@click.argument("tag")
@click.option("-o", "--output", type=click.Choice(["yaml", "json", "path"]), default="yaml")
def get_model(tag: str, output: str) -> None:
    """Show a model's model.yaml (or its directory with -o path)."""
    model = default_store().get(tag)
    if output == "path":
        click.echo(model.path)
    elif output == "json":
        click.echo(json.dumps(model.info.to_dict(), indent=2, default=str))
    else:
        click.echo(yaml.safe_dump(model.info.to_dict(), sort_keys=False), nl=False)


@models.command("delete")
@click.argument("tags", nargs=-1, required=True)
@click.option("-y", "--yes", "--assume-yes", is_flag=True, help="Do not ask for confirmation.")
def delete_models(tags: tuple[str, ...], yes: bool) -> None:
    """Delete models. A TAG without a version deletes every version of that name."""
    store = default_store()
    for text in tags:
        tag = Tag.from_str(text)
        targets = store.list(tag) if tag.version is None else [store.get(tag)]
        for model in targets:
            if not yes and not click.confirm(f"Delete model {model.tag}?", default=False):
                click.echo(f"Skipped {model.tag}")
                continue
            store.delete(model.tag)
            click.echo(f"Deleted {model.tag}")


@models.command("export")
@click.argument("tag")
@click.argument("out_path", required=False, default="")
@click.option("--format", "output_format", default=None, help="bentomodel, gz, xz, bz2, tar, zip or folder.")
def export(tag: str, out_path: str, output_format: str | None) -> None:
    """Export a model to OUT_PATH (default: ./<name>-<version>.bentomodel)."""
    from rich.progress import Progress

    with Progress(transient=True) as progress:
        task = progress.add_task(f"Exporting {tag}", total=None)
        written = export_model(
            tag, out_path, output_format,
            progress=lambda done, total: progress.update(task, completed=done, total=total),
        )
    click.echo(f"Exported {tag} to {written}")


@models.command("import")
@click.argument("path")
def import_(path: str) -> None:
    """Import a model archive (.bentomodel, tar, zip) or folder into the store."""
    model = import_model(path)
    click.echo(f"Imported {model.tag}")
