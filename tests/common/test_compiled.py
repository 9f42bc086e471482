"""The numba decorator every compiled kernel uses (linksyn.common.compiled)."""

from __future__ import annotations

import warnings

from linksyn.common import compiled


def test_kernel_decorator_compiles_in_memory_when_no_cache_can_be_written(monkeypatch):
    # numba refuses cache=True where no cache directory is writable (a read-only install): the kernel must still
    # work, compiled in memory, with a warning saying so.
    real_njit = compiled.njit

    def refusing_njit(*args, **kwargs):
        if kwargs.get("cache"):
            raise RuntimeError("cannot cache function 'twice': no locator available for file '/ro/x.py'")
        return real_njit(*args, **kwargs)

    monkeypatch.setattr(compiled, "njit", refusing_njit)
    monkeypatch.setattr(compiled, "_uncached", [])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")

        @compiled.kernel
        def twice(x: int) -> int:
            return 2 * x

    assert twice(21) == 42
    assert any("no locator available" in str(w.message) and "in memory" in str(w.message) for w in caught)
    assert compiled._uncached == ["test_kernel_decorator_compiles_in_memory_when_no_cache_can_be_written.<locals>.twice"]
