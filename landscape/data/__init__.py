"""Built-in workloads and the loader for user workloads given as ``package.module:function``.

Loading a user workload imports and runs that module's code: that is code execution by design.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from landscape.errors import InputError, LandscapeError
from landscape.workload import Workload

_BUILTIN: dict[str, tuple[str, str]] = {
    "sine": ("landscape.data.sine", "sine"),
    "spirals": ("landscape.data.spirals", "spirals"),
    "digits": ("landscape.data.digits", "digits"),
    "digits-cnn": ("landscape.data.digits", "digits_cnn"),
    # Generated (no files): MNIST-1D, a tanh MLP and the squared loss, for the edge of stability.
    "mnist1d-mse": ("landscape.data.mnist1d", "mnist1d_mse"),
    # The standard library's own sources (shipped with Python): a character-level GPT.
    "text-gpt": ("landscape.data.text", "text_gpt"),
    # File-backed: read from $LANDSCAPE_DATA/<name> or ~/.cache/landscape/data/<name>.
    "mnist": ("landscape.data.mnist", "mnist"),
    "fashion-mnist": ("landscape.data.mnist", "fashion_mnist"),
    "cifar10": ("landscape.data.cifar", "cifar10"),
    # Li et al. 2018's case-study networks, on the same cifar10/ files.
    "cifar10-resnet20": ("landscape.data.cifar", "cifar10_resnet20"),
    "cifar10-resnet20-noshort": ("landscape.data.cifar", "cifar10_resnet20_noshort"),
    "cifar10-resnet56": ("landscape.data.cifar", "cifar10_resnet56"),
    "cifar10-resnet56-noshort": ("landscape.data.cifar", "cifar10_resnet56_noshort"),
    "cifar10-vgg9": ("landscape.data.cifar", "cifar10_vgg9"),
}


def names() -> list[str]:
    """Names of the built-in workloads."""
    return sorted(_BUILTIN)


def get_workload(name: str) -> Workload:
    """A built-in workload by name, or a user one given as ``package.module:function``."""
    if ":" in name:
        module_name, _, attr = name.partition(":")
        if not module_name or not attr.isidentifier():
            raise InputError(f"`--workload` (={name!r}) must look like package.module:function")
    elif name in _BUILTIN:
        module_name, attr = _BUILTIN[name]
    else:
        raise InputError(
            f"`--workload` (={name!r}) is not a built-in workload; choose one of "
            f"{', '.join(names())} or give `package.module:function`"
        )
    try:
        module = importlib.import_module(module_name)
    except LandscapeError:
        raise
    except Exception as exc:  # ImportError, or whatever the user's module raised on import
        hint = ("; is its folder on PYTHONPATH?" if isinstance(exc, ModuleNotFoundError)
                and exc.name == module_name.split(".")[0] else "")
        raise InputError(f"workload module {module_name!r} could not be imported: "
                         f"{type(exc).__name__}: {_one_line(exc)}{hint}") from exc
    factory: Callable[[], Workload] | None = getattr(module, attr, None)
    if not callable(factory):
        raise InputError(f"workload {name!r}: module {module_name!r} has no function {attr!r}")
    try:
        workload = factory()
    except LandscapeError:  # already says what is wrong (a missing or truncated data file ...)
        raise
    except Exception as exc:  # user code: report, don't crash with a traceback
        raise InputError(
            f"workload {name!r} raised {type(exc).__name__}: {_one_line(exc)}"
        ) from exc
    if not isinstance(workload, Workload):
        raise InputError(
            f"workload {name!r} returned {type(workload).__name__}, expected landscape.Workload"
        )
    return workload


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or "(no message)"
