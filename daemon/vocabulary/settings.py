"""The base of every settings model: unknown keys are errors and a loaded config never changes."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Identifier", "Settings"]

# Ids of sites, storehouses, doors and sensors: safe in topics, tags, file names and URLs.
Identifier = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=64)]


class Settings(BaseModel):
    """A strict, frozen settings model (Telegraf's strict config: a typo is an error)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
