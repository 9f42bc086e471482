"""The numba decorator of linksyn's compiled kernels (linksyn.graph.interning and .edges, linksyn.sink.tokens and
.minhash).

Kernels are compiled on first call and cached on disk (numba's cache: `__pycache__` beside the source, else the
user's cache directory, or NUMBA_CACHE_DIR), so a process after the first loads them in a fraction of a second
instead of compiling for seconds. Where no cache directory is writable (a read-only install without a writable
home) numba refuses `cache=True` outright; the kernels are then compiled in memory on every start, with a warning.
Each service compiles or loads its kernels up front (linksyn.graph.build.warm_up, the sink stage at start), so the
first batch does not pay for it.

numba keys a cached kernel on its own source file only: the helpers a kernel inlines and the intrinsics it calls
live in the kernel's module, so that editing them invalidates the cache.
"""

from __future__ import annotations

import warnings
from typing import Callable, TypeVar

from numba import njit

F = TypeVar("F", bound=Callable)


_uncached: list[str] = []


def kernel(fn: F) -> F:
    """`numba.njit(cache=True, nogil=True)`, or the same without the disk cache where none can be written."""
    try:
        return njit(cache=True, nogil=True)(fn)
    except RuntimeError as e:  # "cannot cache function ...: no locator available for file ..."
        if not _uncached:  # once a process: where one kernel cannot be cached, none can
            warnings.warn(f"linksyn: {e} (no writable __pycache__ beside it, user cache directory or "
                          "NUMBA_CACHE_DIR); the compiled kernels are compiled in memory on every start, which takes "
                          "seconds", stacklevel=2)
        _uncached.append(fn.__qualname__)
        return njit(cache=False, nogil=True)(fn)


def inline(fn: F) -> F:
    """A helper of kernels, inlined into them (numba inlines at the IR level: no call, and no cache of its own)."""
    return njit(inline="always", nogil=True)(fn)
