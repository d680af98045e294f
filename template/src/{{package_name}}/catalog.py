"""The raw sources by name, where `sources.py` says each lives in this world, read as DataFrames."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pyspark.sql import DataFrame

from .errors import UserError
from .world import World

# The project's own table of the source's name, written by the synthetic generator (synthetic.py).
SYNTHETIC = "synthetic"
SOURCES = ("customers", "events", "labels")


@dataclass(frozen=True)
class Catalog:
    world: World
    where: Mapping[str, str]

    @classmethod
    def of(cls, world: World, where: Mapping[str, Mapping[str, str]]) -> Catalog:
        """The catalog of this world from `sources.WHERE`, which must name every source for it."""
        mine = where.get(world.name)
        if mine is None:
            raise UserError(f"sources.WHERE has no entry for the {world.name} world; it needs one per world")
        missing = [name for name in SOURCES if not mine.get(name)]
        if missing:
            raise UserError(
                f"sources.WHERE[{world.name!r}] does not name {', '.join(missing)}: name a table or SYNTHETIC"
            )
        return cls(world, mine)

    @property
    def synthetic(self) -> bool:
        """Whether every source is the synthetic generator's (it writes nothing otherwise)."""
        return all(self.where[name] == SYNTHETIC for name in SOURCES)

    def read(self, name: str) -> DataFrame:
        location = self.where.get(name)
        if location is None:
            raise UserError(f"source {name!r} is not one of {', '.join(SOURCES)}")
        if location == SYNTHETIC:
            return self.world.tables.read(name)
        return self.world.tables.read_location(location)
