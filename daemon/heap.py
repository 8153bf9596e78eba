"""The objects built at start (config, register, rule tables) kept out of the cyclic GC's way."""

from __future__ import annotations

import gc

__all__ = ["settle_heap"]


def settle_heap() -> None:
    """Collect what start-up left behind, then freeze the rest (`gc.freeze`).

    Tens of thousands of objects live as long as the process (the config's models, the depot
    register, imported modules); every full collection walked all of them again, prompted by
    the few objects a reading leaves alive for a commit window. Frozen, they are skipped.
    Called again after a reload: the previous config's objects are unfrozen and collected.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()
