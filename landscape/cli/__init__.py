"""The ``landscape`` command line: thin commands over the library, one module per command."""

from __future__ import annotations

import os

import click

from landscape import __version__


def _configure_jax() -> None:
    """One CPU device per core (XLA runs a vmapped chunk on about one thread per device) and a
    persistent compilation cache; both must be set before JAX starts its backend."""
    import jax

    if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
        try:
            jax.config.update("jax_num_cpu_devices", max(1, os.cpu_count() or 1))
        except RuntimeError:  # the backend is already running (e.g. called from a notebook)
            pass
    cache = os.environ.get(
        "LANDSCAPE_JAX_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "landscape", "jax")
    )
    if cache:
        jax.config.update("jax_compilation_cache_dir", cache)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="landscape")
def main() -> None:
    """Loss-landscape analysis on JAX.

    \b
    Start with the main job (trains a small sine network, scans its surface):
      landscape scan

    Compiled programs are cached across runs in ~/.cache/landscape/jax (JAX's persistent
    compilation cache, programs that took over 0.5 s to compile): set LANDSCAPE_JAX_CACHE to
    another folder, or to nothing (LANDSCAPE_JAX_CACHE=) to turn the cache off.
    """
    _configure_jax()


from landscape.cli.check import check  # noqa: E402
from landscape.cli.compare import compare  # noqa: E402
from landscape.cli.connect import connect  # noqa: E402
from landscape.cli.export import export  # noqa: E402
from landscape.cli.hessian import hessian  # noqa: E402
from landscape.cli.info import info  # noqa: E402
from landscape.cli.plot import plot  # noqa: E402
from landscape.cli.plot_function import plot_function  # noqa: E402
from landscape.cli.scan import scan  # noqa: E402
from landscape.cli.sharpness import sharpness  # noqa: E402
from landscape.cli.train import train  # noqa: E402

main.add_command(scan)
main.add_command(hessian)
main.add_command(train)
main.add_command(info)
main.add_command(check)
main.add_command(export)
main.add_command(plot)
main.add_command(plot_function)
main.add_command(compare)
main.add_command(sharpness)
main.add_command(connect)
