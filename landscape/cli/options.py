"""Options and helpers shared by every command (defined once, as in rasterio's ``rio``)."""

from __future__ import annotations

import functools
import gc
import math
import os
import sys
import traceback
from collections.abc import Callable

import click

from landscape.errors import FileInUse, InputError, LandscapeError, ResumeMismatch
from landscape.precision import DEFAULT as DEFAULT_PRECISION
from landscape.precision import PRECISIONS, computing_in

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
eval_batch_option = click.option(
    "--eval-batch-size", type=click.IntRange(min=1), default=None,
    help="Samples per evaluated batch of the data (memory only: means are exact) [default: "
         "the workload's on a CPU; on a GPU/TPU sized from its free memory]. Out of device "
         "memory, the chunk and then this batch are halved and retried (one line says so).")

precision_option = click.option(
    "--precision", type=click.Choice(PRECISIONS), default=None,
    help="Precision of float32 matrix products and convolutions: highest (full float32), "
         "default (the backend's: float32 on a CPU, TF32 on NVIDIA Ampere/Hopper GPUs, one "
         "bfloat16 pass on a TPU; faster, about 1e-3 relative), bfloat16 (JAX's bfloat16 "
         "level: one pass on a TPU, TF32 on NVIDIA GPUs). Recorded in the outputs; a resumed "
         "surface or eigen map keeps its recorded one  [default: highest]")


def compute_in(precision: str | None) -> str:
    """Trace and compile everything the running command computes from here on at
    ``precision`` (None: ``highest``), until the command returns (the click context holds
    JAX's setting); returns it."""
    precision = precision or DEFAULT_PRECISION
    click.get_current_context().with_resource(computing_in(precision))
    return precision


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


class ExistingPath(click.Path):
    """An existing regular file (``folder=False``) or folder: ``click.Path(exists=True)`` that
    says what stands there instead — "is a symbolic link loop", "is a broken symbolic link",
    "is a FIFO (named pipe), not a regular file" (which a reader would wait on forever) — where
    click says "does not exist" or lets it through."""

    def __init__(self, *, folder: bool = False):
        super().__init__(exists=False, file_okay=not folder, dir_okay=folder)
        self.folder = folder

    def convert(self, value, param, ctx):
        import stat

        from landscape.io.paths import kind, missing

        label = "Directory" if self.folder else "File"
        shown = click.format_filename(value)
        try:
            mode = os.stat(value).st_mode
        except OSError as exc:
            self.fail(f"{label} {shown!r} {missing(value, exc)}.", param, ctx)
        wanted = stat.S_ISDIR if self.folder else stat.S_ISREG
        if not wanted(mode):
            self.fail(f"{label} {shown!r} is {kind(mode)}, not "
                      f"{'a folder' if self.folder else 'a regular file'}.", param, ctx)
        return super().convert(value, param, ctx)


USER_CODE_NOTE = ("A `module:function` is imported and called: it runs that code, by design "
                  "(name only code you trust; its folder must be on PYTHONPATH).")


def model_options(command):
    """``--workload --steps --lr`` for commands that train their model on the spot."""
    command = click.option("--lr", type=FiniteFloat(min=0, min_open=True), default=1e-2,
                           show_default=True, help="Adam learning rate for training.")(command)
    command = click.option("--steps", type=click.IntRange(min=1), default=2000, show_default=True,
                           help="Training steps before the analysis.")(command)
    command = click.option("--workload", default="sine", show_default=True,
                           help="Built-in workload name (sine, spirals, digits ...) or "
                                "`package.module:function` returning a landscape.Workload. "
                                + USER_CODE_NOTE)(command)
    return command


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


def one_line(text: str) -> str:
    """``text`` on one line: its lines stripped and joined with spaces (HDF5's messages carry
    the newline of a ``ctime()`` timestamp; JAX's and the user's can have many)."""
    return " ".join(line.strip() for line in str(text).splitlines() if line.strip())


def printable(value: object) -> str:
    """``value`` as text for a message, with newlines and control characters escaped."""
    text = str(value)
    return text if text.isprintable() else repr(text)[1:-1]


def library_errors(command: Callable) -> Callable:
    """Turn the library's typed errors into one-line CLI errors: bad input exits 2, any other
    failure (I/O, format, resume mismatch) exits 1. No tracebacks for user mistakes.

    Every message is folded to one line, the command's own click errors too. A failure caused
    by the operating system (a full disk, a file too large, no permission: an ``OSError``
    anywhere in the exception's chain, as when h5py fails to close a file it could not write)
    is an error of its own line, exit 1. Python's "Exception ignored in ..." reports made while
    the command runs (h5py objects failing to close after such an error: they print through
    ``sys.unraisablehook`` and ``sys.excepthook``) are held back and shown only if the command
    succeeds.
    """

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        held: list = []  # (hook, its arguments)
        hooks = sys.unraisablehook, sys.excepthook
        sys.unraisablehook = lambda report: held.append((hooks[0], (report,)))
        # Cython reports an exception in a destructor with PyErr_Print too, i.e. sys.excepthook
        sys.excepthook = lambda *report: held.append((hooks[1], report))
        failed = True
        try:
            result = command(*args, **kwargs)
            failed = False
            return result
        except InputError as exc:
            _release(exc)
            raise click.UsageError(one_line(as_option(exc))) from exc
        except ResumeMismatch as exc:
            _release(exc)
            raise click.ClickException(one_line(f"{exc}; use --overwrite to replace it or "
                                                "another --out")) from exc
        except FileInUse as exc:
            _release(exc)
            raise click.ClickException(one_line(f"{exc} or choose another --out")) from exc
        except LandscapeError as exc:
            _release(exc)
            raise click.ClickException(one_line(as_option(exc))) from exc
        except click.ClickException as exc:
            exc.message = one_line(exc.message)
            raise
        except Exception as exc:
            cause = _os_error_in(exc)
            if cause is None:
                raise
            _release(exc)
            raise click.ClickException(one_line(str(cause))) from exc
        finally:
            sys.unraisablehook, sys.excepthook = hooks
            if not failed:
                for hook, report in held:
                    hook(*report)

    return wrapper


def warn_if_batch_exceeds(batch_size: int | None, workload: str, train_size: int) -> None:
    """Say so when ``--batch-size`` asks for more samples than the training set holds."""
    if batch_size is not None and batch_size > train_size:
        click.echo(f"warning: `--batch-size` (={batch_size}) is larger than the training set "
                   f"of `{workload}` ({train_size} samples): every step uses all {train_size}",
                   err=True)


def as_option(exc: LandscapeError) -> str:
    """The library's message with its argument named as the option: "`metrics` (=...)" →
    "`--metrics` (=...)" (``exc.param``, the library's name for it; ``_`` → ``-``)."""
    message = str(exc)
    params = getattr(exc, "param", None) or ()
    for param in (params,) if isinstance(params, str) else params:
        message = message.replace(f"`{param}`", f"`--{param.replace('_', '-')}`")
    return message


def _release(exc: BaseException) -> None:
    """Free what the failed command's frames still hold (open h5py objects ...) now, while
    their reports on closing are held back, rather than whenever the traceback is dropped.
    A full collection (0.1 s and more with JAX loaded) only after an I/O failure, where a file
    may be left open in a reference cycle."""
    seen, io_failure = set(), False
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        io_failure |= isinstance(exc, (OSError, RuntimeError))
        traceback.clear_frames(exc.__traceback__)
        exc = exc.__cause__ or exc.__context__
    if io_failure:
        gc.collect()


def _os_error_in(exc: BaseException) -> OSError | None:
    """The first ``OSError`` in ``exc``'s chain of causes and contexts (``exc`` included)."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, OSError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def progress(total: int, desc: str, *, quiet: bool, unit: str = "it"):
    """A tqdm bar on stderr that goes silent with ``--quiet``."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=quiet, file=sys.stderr, leave=False,
                dynamic_ncols=True)


class Bars:
    """Progress bars on stderr one after another (training, then scanning ...), each opened
    when its first progress arrives and closed when the next one opens; silent with
    ``--quiet``. ``write`` prints a line above them (on stderr, even with ``--quiet``)."""

    def __init__(self, quiet: bool, units: dict[str, str] | None = None):
        self.quiet, self.bar, self.desc, self.units = quiet, None, None, units or {}

    def __enter__(self) -> "Bars":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        self._switch(None, 0, "it")

    def __call__(self, desc: str, done: int, total: int) -> None:
        """An ``on_progress(what, done, total)`` driving one bar per ``what``."""
        self.advance(desc, self.units.get(desc, "it"))(done, total)

    def _switch(self, desc: str | None, total: int, unit: str) -> None:
        if self.bar is not None:
            self.bar.close()
        self.desc = desc
        self.bar = None if desc is None else progress(total, desc, quiet=self.quiet, unit=unit)

    def advance(self, desc: str, unit: str = "it") -> Callable[[int, int], None]:
        """An ``on_progress(done, total)`` for bar ``desc``."""
        def update(done: int, total: int) -> None:
            if self.desc != desc:
                self._switch(desc, total, unit)
            self.bar.update(done - self.bar.n)
        return update

    def step(self, desc: str, total: int, unit: str = "it") -> Callable[..., None]:
        """A callback adding one to bar ``desc`` (of ``total``) whatever its arguments."""
        advance = self.advance(desc, unit)
        return lambda *_: advance((self.bar.n if self.desc == desc else 0) + 1, total)

    def write(self, line: str) -> None:
        from tqdm.auto import tqdm

        tqdm.write(line, file=sys.stderr)


def optimizer_names(*, allow_all: bool = False, twice: str = "") -> Callable:
    """A click callback checking ``--optimizer`` names against the suite (``all``: every one,
    where ``allow_all``); a name given twice is refused, ``twice`` saying why."""

    def parse(ctx, param, values: tuple[str, ...]) -> tuple[str, ...]:
        import optimizers

        valid = optimizers.names()
        if allow_all and "all" in values:
            if len(values) > 1:
                raise click.BadParameter("(=all) already names every optimizer; give it alone")
            return valid
        for name in values:
            if name not in valid:
                raise click.BadParameter(f"(={name!r}) is not a known optimizer; choose one of "
                                         f"{', '.join(valid)}" + " (or all)" * allow_all)
        repeated = sorted({name for name in values if values.count(name) > 1})
        if repeated:
            raise click.BadParameter(f"(={repeated[0]!r}) is given twice{twice}")
        return values

    return parse


def echo_outputs(paths: list[str]) -> None:
    """Print the output paths, one per line, at the end of a command."""
    for path in paths:
        click.echo(path)


surface_file = click.argument("file", type=ExistingPath())
