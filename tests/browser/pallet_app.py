"""The app the pallet panel's browser test drives: fake line devices with ``[trace]``, an operator
who logs in on the PIN pad, and two closed, coded cartons waiting for a pallet. Built by uvicorn
(``--factory``) in its own process; ``PALLET_HMI_DIR`` names the folder of its database."""

from __future__ import annotations

import os
from pathlib import Path

from fastapi import FastAPI

from api.app import create_app
from grading.access import AccessStore, Role
from grading.store import create_store_engine, migrate, open_lot
from grading.trace.serials import LineSerials
from tests.unit.api.conftest import line_factory
from tests.unit.trace.test_pallets import TRACE, coded_cartons

OPERATOR, OPERATOR_PIN = "li-si", "135790"


def pallet_app() -> FastAPI:
    folder = Path(os.environ["PALLET_HMI_DIR"])
    engine = create_store_engine(f"sqlite:///{folder}/api.db")  # the database line_factory opens
    try:
        migrate(engine)
        AccessStore(engine).add_user(OPERATOR, Role.operator, OPERATOR_PIN)
        lot = open_lot(engine, code="LOT-9", grower="李四", variety="", product="apple", recipe="apple", line="line-1")
        coded_cartons(engine, lot.id, 2, LineSerials(engine, "line-1", 1))
    finally:
        engine.dispose()
    return create_app(line_factory(folder, trace=TRACE), live_interval_s=0.2, live_recheck_s=0.5)
