"""The line's lots and cartons, on the running line: the operations the API and HMI call.

Each operation does its database work off the loop (``asyncio.to_thread``) and changes line
state only between two decisions (``LineRuntime.switch_lot`` / ``between_decisions``):

* start a lot (a switch when one is open): the new lot and its open cartons are committed,
  then the runtime switches at a cup boundary, then the old lot's cartons are finished; with
  ``carry_over`` (``[lots] carry_over_partial_cartons``) a partial carton (some fruit in it) is
  instead kept open and topped up with the next lot's fruit, as packing centers do with the
  last carton of a grower's lot: it then holds fruit of both lots, and when it closes it gets
  the packing center's own certificate (``grading.trace.certificates``, through the coder);
* close the open lot: intake stops, then the lot and its cartons are closed;
* close a carton: a new one is committed, swapped in, and the old one finished from its rows
  once every fruit decided into it is committed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine

from grading.lots import cartons as carton_store
from grading.lots import lots as lot_store
from grading.lots.cartons import Carton, CartonPacker, OpenCarton
from grading.lots.lots import LotDetails, LotError
from grading.recipe import Recipe
from grading.runtime import LineRuntime
from grading.store import Lot, RecordWriter

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LotSwitch:
    lot: Lot
    closed_lot: Lot | None
    closed_cartons: tuple[Carton, ...]


class LineLots:
    def __init__(
        self,
        *,
        engine: Engine,
        runtime: LineRuntime,
        writer: RecordWriter,
        packer: CartonPacker,
        recipe: Recipe,
        recipe_hash: str | None,
        line: str,
        wall_clock: Callable[[], datetime],
        on_carton_closed: Callable[[Carton], None] = lambda carton: None,
        coder: Callable[[Carton], Carton] | None = None,
        check_lot_code: Callable[[str], None] = lambda code: None,
        carry_over: bool = False,
    ) -> None:
        self.engine = engine
        self.runtime = runtime
        self.writer = writer
        self.packer = packer
        self.recipe = recipe
        self.recipe_hash = recipe_hash
        self.line = line
        self._wall_clock = wall_clock
        self._on_carton_closed = on_carton_closed
        # gives a closed carton its GS1 code (grading.trace.carton_codes), blocking: run off the loop
        self._coder = coder
        self._check_lot_code = check_lot_code  # raises LotError for a code the cartons' codes cannot carry
        self.carry_over = carry_over  # keep partial cartons open across a lot switch
        self._lock = asyncio.Lock()  # one lot or carton operation at a time
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def current(self) -> Lot | None:
        return self.runtime.lot

    async def start(self, details: LotDetails, *, by: str) -> LotSwitch:
        """Open a lot (closing the open one, at the same cup boundary) for the line's recipe."""
        if details.product and details.product != self.recipe.product:
            raise LotError(
                f"the line grades {self.recipe.product} (recipe {self.recipe.name}); "
                f"a {details.product} lot needs that product's recipe activated and the line restarted"
            )
        self._check_lot_code(details.code)
        async with self._lock:
            at = self._wall_clock()
            product = details.product or self.recipe.product
            lot, closed = await asyncio.to_thread(
                lot_store.start_lot, self.engine, _with_product(details, product), line=self.line,
                recipe_name=self.recipe.name, recipe_hash=self.recipe_hash, at=at, by=by, switch=True,
            )
            # a carton counted empty here but filled before the switch is closed as today: one lot
            kept = [c for c in self.packer.open_cartons() if c.fruit_count > 0] if self.carry_over and closed else []
            kept_outlets = {c.outlet for c in kept}
            renewed = [o for o in self.packer.packing if o.number not in kept_outlets]
            new = await asyncio.to_thread(carton_store.open_cartons, self.engine, lot.id, renewed, at=at)
            if kept:
                await asyncio.to_thread(carton_store.carry_cartons, self.engine, [c.id for c in kept], lot.id)
            taken: list[OpenCarton] = []

            def switch() -> None:
                taken.extend(self.packer.replace(new, outlets=[o.number for o in renewed]))
                self.runtime.decider.assigner.carton_swapped([c.outlet for c in new])

            await self.runtime.switch_lot(lot, between=switch)
            switched_at = self._wall_clock()
            if closed is not None:
                await asyncio.to_thread(lot_store.set_lot_ended_at, self.engine, closed.id, switched_at)
                closed = await asyncio.to_thread(lot_store.get_lot, self.engine, closed.id)
            finished = await self._finish(taken, closed_at=switched_at, by="lot switch")
            return LotSwitch(lot, closed, tuple(finished))

    async def close(self, lot_id: int, *, by: str) -> LotSwitch:
        """Close the open lot ``lot_id``: intake stops first; its open cartons are closed."""
        async with self._lock:
            current = self.runtime.lot
            if current is None or current.id != lot_id:
                lot = await asyncio.to_thread(lot_store.get_lot, self.engine, lot_id)
                if lot.is_open:  # open in the store, but not on this line's runtime
                    closed = await asyncio.to_thread(lot_store.close_lot, self.engine, lot_id, at=self._wall_clock(), by=by)
                    return LotSwitch(closed, closed, ())
                raise LotError(f"lot {lot.code} is already closed")
            taken: list[OpenCarton] = []
            await self.runtime.switch_lot(None, between=lambda: taken.extend(self.packer.replace([])))
            at = self._wall_clock()
            finished = await self._finish(taken, closed_at=at, by=by)
            closed = await asyncio.to_thread(lot_store.close_lot, self.engine, lot_id, at=at, by=by)
            return LotSwitch(closed, closed, tuple(finished))

    async def close_carton(self, outlet: int, *, by: str, scale_weight_g: float | None = None) -> Carton:
        """Close ``outlet``'s open carton and open the next one at once."""
        async with self._lock:
            lot = self.runtime.lot
            old = self.packer.open_carton(outlet)
            if lot is None or old is None:
                raise LotError(f"outlet {outlet} has no open carton")
            spec = next(o for o in self.packer.packing if o.number == outlet)
            at = self._wall_clock()
            new = await asyncio.to_thread(carton_store.open_cartons_after, self.engine, old.id, lot.id, spec, at=at)
            taken: list[OpenCarton] = []
            def swap() -> None:
                taken.extend(self.packer.replace([new], outlets=[outlet]))
                self.runtime.decider.assigner.carton_swapped([outlet])

            await self.runtime.between_decisions(swap)
            finished = await self._finish(taken, closed_at=self._wall_clock(), by=by, scale_weight_g=scale_weight_g)
            return finished[0]

    def carton_full(self, outlet: int) -> None:
        """The PLC's carton-full input of ``outlet`` rose: close its carton (off the poll)."""
        task = asyncio.get_running_loop().create_task(self._carton_full(outlet), name=f"carton-full-{outlet}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def wait_idle(self) -> None:
        """Return once every carton close the PLC asked for has finished (before shutdown)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _carton_full(self, outlet: int) -> None:
        if self.packer.open_carton(outlet) is None:
            log.info("carton-full input of outlet %d: no open carton", outlet)
            return
        try:
            await self.close_carton(outlet, by="plc")
        except LotError as exc:
            log.warning("carton-full input of outlet %d: %s", outlet, exc)

    async def _finish(
        self, taken: Sequence[OpenCarton], *, closed_at: datetime, by: str, scale_weight_g: float | None = None
    ) -> list[Carton]:
        if not taken:
            return []
        await self.runtime.settled()  # every fruit decided into them is committed or corrected
        await asyncio.to_thread(self.writer.flush, 30.0)
        order = self.recipe.quality_class_ids()
        spreads = {s.id: s.carton_weight_spread_g for s in self.recipe.size_classes}
        finished = []
        for carton in taken:
            done = await asyncio.to_thread(
                carton_store.finish_carton, self.engine, carton.id, closed_at=closed_at, closed_by=by,
                class_order=order, scale_weight_g=scale_weight_g,
                max_weight_spread_g=spreads.get(carton.size_class) if carton.size_class else None,
            )
            if self._coder is not None:
                try:
                    done = await asyncio.to_thread(self._coder, done)
                except Exception:  # a carton is closed whether or not it could be coded
                    log.exception("carton %d closed without a GS1 code", done.id)
            self._on_carton_closed(done)
            finished.append(done)
        return finished


def _with_product(details: LotDetails, product: str) -> LotDetails:
    from dataclasses import replace

    return replace(details, product=product)
