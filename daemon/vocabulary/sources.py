"""Counts per source (topic, port) that stay bounded however many sources appear."""

from __future__ import annotations

from collections import Counter

__all__ = ["OTHER_SOURCES", "SOURCES_KEPT", "SourceCounts"]

# Past this many distinct sources, new ones are counted together: 50,000 junk topics must not
# become 50,000 metric series, log limiters and dictionary entries.
SOURCES_KEPT = 1000
OTHER_SOURCES = "other"


class SourceCounts(Counter[str]):
    """A Counter of at most `SOURCES_KEPT` sources; the rest are counted as `other`."""

    def count(self, source: str) -> None:
        """One more from `source`."""
        n = self.get(source)
        if n is not None:
            self[source] = n + 1
        elif len(self) < SOURCES_KEPT:
            self[source] = 1
        else:
            self[OTHER_SOURCES] = self.get(OTHER_SOURCES, 0) + 1
