from __future__ import annotations

import pytest

from ._impls import COMPILED, PURE


@pytest.fixture(params=["pure", "compiled"])
def core(request):
    """Each kernel implementation in turn; the compiled one is skipped when not built."""
    if request.param == "pure":
        return PURE
    if COMPILED is None:
        pytest.skip("compiled kernel inngest_do._core is not built")
    return COMPILED
