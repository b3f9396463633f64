"""``bentolite build``, the bento store commands (``list``, ``get``, ``delete``, ``export``,
``import``) and ``bentolite containerize``, named as BentoML names them."""
from __future__ import annotations

import shlex
from typing import Any

import click

from ._output import delete_tags, human_size, print_item, print_listing, with_progress

__all__ = ["register"]


@click.command()
@click.argument("build_ctx", default=".", type=click.Path(exists=True, file_okay=False))
@click.option("-f", "--bentofile", default="bentofile.yaml", show_default=True,
              help="The bentofile, as a path or relative to BUILD_CTX.")
@click.option("--version", default=None, help="The bento's version [default: generated].")
@click.option("-o", "--output", type=click.Choice(["tag", "default"]), default="default",
              help="'tag' prints only __tag__:NAME:VERSION.")
def build(build_ctx: str, bentofile: str, version: str | None, output: str) -> None:
    """Build a bento from BUILD_CTX and its bentofile.yaml into the bento store."""
    from ..bentos import build_bentofile

    bento = build_bentofile(bentofile, version=version, build_ctx=build_ctx)
    if output == "tag":
        click.echo(f"__tag__:{bento.tag}")
        return
    click.secho(f"Successfully built {bento}.", fg="green")
    click.echo(f"\nServe it:        bentolite serve {bento.tag}\n"
               f"Containerize it: bentolite containerize {bento.tag}")


def _summary(bento: Any) -> dict[str, str]:
    return {
        "tag": str(bento.tag),
        "size": human_size(bento.file_size),
        "model_size": human_size(bento.model_size),
        "creation_time": bento.creation_time.astimezone().strftime("%Y-%m-%d %H:%M:%S"),
    }


@click.command("list")
@click.argument("name", required=False)
@click.option("-o", "--output", type=click.Choice(["table", "json", "yaml"]), default="table")
def list_bentos(name: str | None, output: str) -> None:
    """List bentos, newest first (all, or the versions of NAME)."""
    from ..bentos import default_bento_store

    found = sorted(default_bento_store().list(name), key=lambda b: b.creation_time, reverse=True)
    print_listing([_summary(b) for b in found], {"Tag": "tag", "Size": "size",
                  "Model Size": "model_size", "Creation Time": "creation_time"}, output)


@click.command("get")
@click.argument("tag")
@click.option("-o", "--output", type=click.Choice(["yaml", "json", "path"]), default="yaml")
def get_bento(tag: str, output: str) -> None:
    """Show a bento's bento.yaml (or its directory with -o path)."""
    from ..bentos import default_bento_store

    bento = default_bento_store().get(tag)
    print_item(bento.to_dict(), bento.path, output)


@click.command("delete")
@click.argument("tags", nargs=-1, required=True)
@click.option("-y", "--yes", "--assume-yes", is_flag=True, help="Do not ask for confirmation.")
def delete_bentos(tags: tuple[str, ...], yes: bool) -> None:
    """Delete bentos. A TAG without a version deletes every version of that name."""
    from ..bentos import default_bento_store

    delete_tags(default_bento_store(), tags, yes)


@click.command("export")
@click.argument("tag")
@click.argument("out_path", required=False, default="")
@click.option("--format", "output_format", default=None, help="bento, gz, xz, bz2, tar, zip or folder.")
def export(tag: str, out_path: str, output_format: str | None) -> None:
    """Export a bento, models included, to OUT_PATH (default: ./<name>-<version>.bento)."""
    from ..bentos import export_bento

    written = with_progress(f"Exporting {tag}", lambda progress: export_bento(
        tag, out_path, output_format, progress=progress))
    click.echo(f"Exported {tag} to {written}")


@click.command("import")
@click.argument("path")
def import_(path: str) -> None:
    """Import a bento archive (.bento, tar, zip) or folder into the store."""
    from ..bentos import import_bento

    click.echo(f"Imported {import_bento(path).tag}")


@click.command()
@click.argument("tag")
@click.option("-t", "--image-tag", default=None, help="The image's name:tag [default: the bento tag].")
@click.option("--backend", type=click.Choice(["docker", "podman", "buildah"]), default=None,
              help="[default: the first of docker, podman, buildah on PATH]")
@click.option("--output", default=None, type=click.Path(file_okay=False),
              help="Write the build context to this (new or empty) directory and print the "
                   "command that builds it, instead of building.")
def containerize(tag: str, image_tag: str | None, backend: str | None, output: str | None) -> None:
    """Build an OCI image that serves bento TAG on port 3000."""
    from ..bentos import containerize as run

    result = run(tag, image_tag=image_tag, backend=backend, output=output)
    if result.built:
        click.secho(f"Built image {result.image_tag}. Run it with:\n"
                    f"  {result.command[0]} run --rm -p 3000:3000 {result.image_tag}", fg="green")
    else:
        click.echo(f"Wrote the build context of {tag} to {result.context}. Build it with:\n"
                   f"  {shlex.join(result.command)}")


def register(cli: Any) -> None:
    for command in (build, list_bentos, get_bento, delete_bentos, export, import_, containerize):
        cli.add_command(command)
