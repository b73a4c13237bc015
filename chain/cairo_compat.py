"""Make cairo-lang 0.14.0.1 importable on Python 3.11+.

``starkware/cairo/lang/instances.py`` declares::

    cpu_instance_def: CpuInstanceDef = field(default=CpuInstanceDef())

``CpuInstanceDef`` is an ``eq=True`` dataclass, so its ``__hash__`` is ``None``; since
Python 3.11 ``dataclasses`` rejects any unhashable default (``ValueError: mutable
default ... use default_factory``), and every import of the Starknet VM goes through
that module. We fix it here rather than in site-packages so that a fresh
``pip install`` works unchanged: a ``sys.meta_path`` finder serves that one module from
its own source with the single offending expression rewritten to
``field(default_factory=CpuInstanceDef)``. Each layout then gets its own (equal)
``CpuInstanceDef`` instead of a shared one, which nothing in cairo-lang relies on: the
instance is only read.

A second clash: cairo-lang installs a top-level ``services`` package (``services.everest``,
imported by the Starknet execution code) and Keiko has its own top-level ``services``.
Whichever is imported first hides the other's subpackages. When Keiko's wins (any
process started from the repository root), the finder below resolves the missing
``services.<child>`` from cairo-lang's directory. (When cairo-lang's wins, i.e. outside the
repository, setuptools' editable finder already serves ``services.kit`` & co.)

Import this module before anything from ``starkware``::

    import chain.cairo_compat  # noqa: F401  (must precede starkware imports)

Installing is idempotent, and a cairo-lang release whose source no longer contains the
offending expression is loaded untouched.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.metadata
import importlib.util
import sys
from collections.abc import Sequence
from functools import cache
from types import CodeType, ModuleType

TARGET_MODULE = "starkware.cairo.lang.instances"
BROKEN = "field(default=CpuInstanceDef())"
FIXED = "field(default_factory=CpuInstanceDef)"


class _PatchedSourceLoader(importlib.machinery.SourceFileLoader):
    """Loads the target module from its file with the broken default rewritten."""

    def get_code(self, fullname: str) -> CodeType:
        # Compile from the patched text (never from the cached .pyc, which holds the
        # unpatched code); keep the real path so tracebacks point at the real file.
        source = self.get_source(fullname) or ""
        return compile(patch_source(source), self.path, "exec", dont_inherit=True)


@cache
def _cairo_services_dir() -> str | None:
    """Directory of cairo-lang's own top-level ``services`` package, if installed."""
    try:
        located = importlib.metadata.distribution("cairo-lang").locate_file("services")
    except importlib.metadata.PackageNotFoundError:
        return None
    return str(located)


_MARKER = "_keiko_cairo_compat"


class _CairoCompatFinder(importlib.abc.MetaPathFinder):
    """Intercepts ``starkware.cairo.lang.instances`` and unresolvable ``services.<child>``."""

    _keiko_cairo_compat = True

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname.startswith("services.") and fullname.count(".") == 1:
            return self._find_services_child(fullname, path)
        if fullname != TARGET_MODULE:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or not isinstance(spec.loader, importlib.machinery.SourceFileLoader):
            return spec
        loader = _PatchedSourceLoader(fullname, spec.loader.path)
        return importlib.util.spec_from_file_location(fullname, loader.path, loader=loader)

    @staticmethod
    def _find_services_child(
        fullname: str, path: Sequence[str] | None
    ) -> importlib.machinery.ModuleSpec | None:
        # Found where the loaded ``services`` says: normal import machinery handles it.
        if path is not None and importlib.machinery.PathFinder.find_spec(fullname, path):
            return None
        extra = _cairo_services_dir()
        if extra is None or (path is not None and extra in path):
            return None
        return importlib.machinery.PathFinder.find_spec(fullname, [extra])


def patch_source(source: str) -> str:
    """Return ``instances.py`` source with the unhashable dataclass default fixed."""
    return source.replace(BROKEN, FIXED)


def install() -> None:
    """Put the finder first on ``sys.meta_path`` (once) so it sees the import first."""
    if is_installed():
        return
    sys.meta_path.insert(0, _CairoCompatFinder())


def is_installed() -> bool:
    # Checked by marker rather than isinstance: importlib.reload() of this module makes
    # a new class, and a reload must not stack a second finder.
    return any(getattr(finder, _MARKER, False) for finder in sys.meta_path)


install()
