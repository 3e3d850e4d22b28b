"""Options and helpers shared by every command (defined once, as in rasterio's ``rio``)."""

from __future__ import annotations

import functools
import math
import os
import sys
from collections.abc import Callable

import click

from landscape.errors import InputError, LandscapeError, ResumeMismatch

out_option = click.option(
    "--out",
    type=click.Path(file_okay=False),
    default="landscape-out",
    show_default=True,
    help="Folder for the outputs (created if missing).",
)
seed_option = click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0,
                           show_default=True, help="Random seed.")
quiet_option = click.option("--quiet", "-q", is_flag=True, help="No progress bars.")

MAX_DPI = 2400  # a larger figure would be gigapixels
MAX_LEVELS = 1000  # contour levels
MAX_FUNCTION_GRID = 4001  # points per axis of a 2D test function's picture


class FiniteFloat(click.FloatRange):
    """A float option that refuses ``nan`` and ``inf`` (which ``float()`` accepts), in an
    optional range as :class:`click.FloatRange`."""

    name = "float"

    def _describe_range(self) -> str:  # shown in --help
        return "finite" if self.min is None and self.max is None else super()._describe_range()

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


USER_CODE_NOTE = ("A `module:function` is imported and called: it runs that code, by design "
                  "(name only code you trust; its folder must be on PYTHONPATH).")


def distributed_options(command: Callable) -> Callable:
    """``--coordinator --num-processes --process-id`` for multi-host runs (jax.distributed)."""
    command = click.option("--process-id", type=click.IntRange(min=0), default=None,
                           help="This process's index in [0, --num-processes).")(command)
    command = click.option("--num-processes", type=click.IntRange(min=1), default=None,
                           help="Number of processes in a multi-host run.")(command)
    command = click.option("--coordinator", default=None, metavar="HOST:PORT",
                           help="Address of process 0 for a multi-host run (jax.distributed); "
                                "without these flags a cluster environment (SLURM ...) is "
                                "detected, else the run is single-process.")(command)
    return command


def comma_list(allowed: tuple[str, ...]) -> Callable:
    """A click callback parsing ``a,b`` into a tuple, each item checked against ``allowed``."""

    def parse(ctx, param, value: str) -> tuple[str, ...]:
        # a name given twice counts once (it would otherwise be two datasets of one name)
        items = tuple(dict.fromkeys(item.strip() for item in value.split(",") if item.strip()))
        bad = [item for item in items if item not in allowed]
        if bad or not items:
            raise click.BadParameter(
                f"(={value}) must be a comma-separated list of: {', '.join(allowed)}"
            )
        return items

    return parse


def library_errors(command: Callable) -> Callable:
    """Turn the library's typed errors into one-line CLI errors: bad input exits 2, any other
    failure (I/O, format, resume mismatch) exits 1. No tracebacks for user mistakes."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except InputError as exc:
            raise click.UsageError(as_option(exc)) from exc
        except ResumeMismatch as exc:
            raise click.ClickException(f"{exc}; use --overwrite to replace it or another --out"
                                       ) from exc
        except LandscapeError as exc:
            raise click.ClickException(str(exc)) from exc

    return wrapper


def as_option(exc: InputError) -> str:
    """The library's message with its argument named as the option: "`metrics` (=...)" →
    "`--metrics` (=...)" (``exc.param``, the library's name for it; ``_`` → ``-``)."""
    message = str(exc)
    param = getattr(exc, "param", None)
    if param:
        message = message.replace(f"`{param}`", f"`--{param.replace('_', '-')}`")
    return message


def make_out_dir(path: str) -> str:
    """Create ``path`` (and parents) and check that it is writable."""
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise click.ClickException(f"cannot create `--out` folder {path}: {exc.strerror}") from exc
    if not os.access(path, os.W_OK):
        raise click.ClickException(f"`--out` folder {path} is not writable")
    return path


def progress(total: int, desc: str, *, quiet: bool, unit: str = "it"):
    """A tqdm bar on stderr that goes silent with ``--quiet``."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=quiet, file=sys.stderr, leave=False,
                dynamic_ncols=True)


def echo_outputs(paths: list[str]) -> None:
    """Print the output paths, one per line, at the end of a command."""
    for path in paths:
        click.echo(path)
