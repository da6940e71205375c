"""exactrelu's compiled dependencies, imported once, and what to install when one is missing.

python-flint (``flint``) and pycddlib (``cdd``, with its exact module ``cdd.gmp``) are imported
here. A missing one is bound to a stand-in whose first use (a call or an attribute of one of its
names) raises :class:`~exactrelu.errors.MissingDependencyError` with the install command, so that
``import exactrelu`` and the float-only parts (tracing, weight/bias graphs) work without them and
the exact layer says what to install when it starts. When the module is there, the name is the
module itself (no cost on any path).

The compiled engine ``exactrelu._core`` is optional: ``core`` is the module or None, and
:func:`core_missing` says how to get it (logged once at ``INFO``: the Python engine does the work).
Optional modules of exactrelu (``strategies``, ``testing``, ``plot``) turn the ImportError of their
own dependency into :func:`extra_missing`, which names the extra that installs it.

>>> from exactrelu._deps import flint
>>> flint.fmpq(1, 3) + flint.fmpq(1, 6)
1/2
"""

from __future__ import annotations

import importlib
import logging
import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any

from .errors import MissingDependencyError

__all__ = ["cdd", "cdd_gmp", "core", "core_missing", "dask_workers", "extra_missing", "flint",
           "is_dask_client"]

_log = logging.getLogger("exactrelu")

_CDDLIB = ("install cddlib and GMP first (Debian: apt-get install libcdd-dev libgmp-dev g++; "
           "conda: conda install -c conda-forge cddlib gmp), then pip install 'pycddlib>=3'")
_FLINT = "exactrelu's exact arithmetic needs python-flint: pip install python-flint"
_CDD = f"exactrelu's exact polyhedra need pycddlib: {_CDDLIB}"
_CDD_GMP = ("exactrelu's exact polyhedra need pycddlib's exact module cdd.gmp (pycddlib 3 built "
            f"against GMP; pycddlib-standalone and pycddlib 2 have none): {_CDDLIB}")
_CORE = ("the compiled engine exactrelu._core is not built: exactrelu compiles it when installed "
         "where a C++17 compiler and GMP's headers are (Debian: apt-get install g++ libgmp-dev); "
         "install them, then reinstall exactrelu with pip's --force-reinstall --no-deps "
         "--no-cache-dir")


class _AbsentName(type):
    """A name of a missing module: a class (``isinstance`` against it is False) that raises
    the module's MissingDependencyError when called or when one of its attributes is read."""

    _message: str

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        raise MissingDependencyError(cls._message)

    def __getattr__(cls, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        raise MissingDependencyError(cls._message)


class _AbsentModule(ModuleType):
    """Stands in for a module that failed to import: every name read from it is absent."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(name)
        self._message = message

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        absent = _AbsentName(attr, (), {"_message": self._message})
        setattr(self, attr, absent)
        return absent


def _module(name: str, message: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError as err:
        return _AbsentModule(name, f"{message} ({err})")


if TYPE_CHECKING:  # a type checker sees the modules; a stand-in has their names
    import cdd
    import cdd.gmp as cdd_gmp
    import flint
else:
    flint = _module("flint", _FLINT)
    cdd = _module("cdd", _CDD)
    cdd_gmp = _module("cdd.gmp", _CDD if isinstance(cdd, _AbsentModule) else _CDD_GMP)


core: ModuleType | None
try:
    from . import _core as core
    _core_error = ""
except ImportError as _err:  # built without a C++ compiler or GMP: the Python engine does the work
    core = None
    _core_error = str(_err)
_core_logged = False


def core_missing() -> str:
    """Why the compiled engine is unavailable and how to get it; logged once at INFO."""
    global _core_logged
    message = f"{_CORE} ({_core_error})" if _core_error else _CORE
    if not _core_logged:
        _core_logged = True
        _log.info("%s; the Python engine certifies instead", message)
    return message


def extra_missing(err: ImportError, module: str, extra: str) -> MissingDependencyError:
    """The error for exactrelu's optional ``module`` whose dependency failed to import (``err``):
    it names the extra that installs it."""
    what = err.name.partition(".")[0] if err.name else str(err)
    return MissingDependencyError(f"{module} needs {what}: pip install 'exactrelu[{extra}]'")


def is_dask_client(executor: Any) -> bool:
    """Is ``executor`` a ``dask.distributed.Client`` (checked without importing Dask)?"""
    distributed = sys.modules.get("distributed")
    return distributed is not None and isinstance(executor, distributed.Client)


def dask_workers(client: Any) -> int:
    """The number of workers of a Dask client's cluster (at least 1)."""
    return max(1, len(client.scheduler_info().get("workers", {})))
