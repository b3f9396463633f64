"""Shared by the store commands (``models ...`` and the bento commands): output and deletes."""
from __future__ import annotations

import json
from typing import Any, Callable

import click
import yaml

__all__ = ["delete_tags", "human_size", "print_listing", "print_item", "with_progress"]


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.2f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def print_listing(rows: list[dict[str, Any]], columns: dict[str, str], output: str) -> None:
    """``rows`` as JSON, YAML or a table whose ``columns`` map headers to row keys."""
    if output == "json":
        click.echo(json.dumps(rows, indent=2))
    elif output == "yaml":
        click.echo(yaml.safe_dump(rows, sort_keys=False), nl=False)
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(box=None, header_style="bold")
        for column in columns:
            table.add_column(column, no_wrap=True)
        for row in rows:
            table.add_row(*(row[key] for key in columns.values()))
        console = Console(soft_wrap=True)
        # never cut a tag short: users copy them; a wide table may wrap in the terminal
        needed = console.measure(table, options=console.options.update(width=10_000)).maximum
        console.width = max(console.width, needed)
        console.print(table)


def print_item(info: dict[str, Any], path: str, output: str) -> None:
    """One item's yaml file content (``yaml``/``json``) or its directory (``path``)."""
    if output == "path":
        click.echo(path)
    elif output == "json":
        click.echo(json.dumps(info, indent=2, default=str))
    else:
        click.echo(yaml.safe_dump(info, sort_keys=False), nl=False)


def with_progress(label: str, work: Callable[[Callable[[int, int], None]], str]) -> str:
    """Run ``work(progress)`` under a transient progress bar (bytes done of total)."""
    from rich.progress import Progress

    with Progress(transient=True) as progress:
        task = progress.add_task(label, total=None)
        return work(lambda done, total: progress.update(task, completed=done, total=total))


def delete_tags(store: Any, tags: tuple[str, ...], yes: bool) -> None:
    """Delete from ``store``; a tag without a version means every version of that name."""
    from ..tag import Tag

    what = store.kind.lower()
    for text in tags:
        tag = Tag.from_str(text)
        targets = store.list(tag) if tag.version is None else [store.get(tag)]
        for item in targets:
            if not yes and not click.confirm(f"Delete {what} {item.tag}?", default=False):
                click.echo(f"Skipped {item.tag}")
                continue
            store.delete(item.tag)
            click.echo(f"Deleted {item.tag}")
