"""Grower settlement: kg and value per quality class x size class from a price table, less
the configured deductions; and the value of a pack-out (for the what-if).

A price table (TOML, ``PriceTable``) gives CNY per kg by quality class and size class, with
``"*"`` for any size; a class it does not price is worth 0 (recheck, by default). Only weighed
fruit count (fruit without a weight have no kg). Money is rounded to the fen only at the end
of each line.
"""

from __future__ import annotations

import csv
import io
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from grading.config import ConfigIssue
from grading.lots.packout import Packout

DEMO_PRICES = Path(__file__).with_name("prices_demo.toml")


class Deduction(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=100, description="Shown on the settlement.")
    kind: Literal["per_kg", "percent", "fixed"] = Field(description="CNY per weighed kg, % of gross, or a fixed CNY sum.")
    amount: float = Field(ge=0, le=1_000_000, description="The rate or sum.")


class PriceTable(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    currency: Literal["CNY"] = Field("CNY", description="Prices are in yuan per kg.")
    prices: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="Quality class -> size class (or '*') -> CNY per kg."
    )
    deductions: list[Deduction] = Field(default_factory=list, description="Taken from the gross value, in order.")

    def price(self, quality_class: str, size_class: str | None) -> float:
        by_size = self.prices.get(quality_class, {})
        if size_class is not None and size_class in by_size:
            return by_size[size_class]
        return by_size.get("*", 0.0)


class PriceTableError(Exception):
    def __init__(self, issues: list[ConfigIssue]) -> None:
        super().__init__("\n".join(str(i) for i in issues))
        self.issues = issues


def load_price_table(path: str | Path | None = None) -> PriceTable:
    path = Path(path) if path is not None else DEMO_PRICES
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        return PriceTable.model_validate(data)
    except OSError as exc:
        raise PriceTableError([ConfigIssue(str(path), "(file)", exc.strerror or str(exc))]) from exc
    except tomllib.TOMLDecodeError as exc:
        raise PriceTableError([ConfigIssue(str(path), "(toml)", str(exc))]) from exc
    except ValidationError as exc:
        raise PriceTableError([
            ConfigIssue(str(path), ".".join(str(p) for p in e["loc"]) or "(top level)", e["msg"]) for e in exc.errors()
        ]) from exc


def packout_value_cny(packout: Packout, prices: PriceTable) -> float:
    """The gross value of a pack-out's weighed fruit."""
    return round(sum(c.weight_mg / 1e6 * prices.price(c.quality_class, c.size_class) for c in packout.cells), 2)


def settlement(packout: Packout, prices: PriceTable, lot: Mapping[str, Any] | None = None) -> dict[str, Any]:
    lines: list[dict[str, Any]] = []
    for c in sorted(packout.cells, key=lambda c: (c.quality_class, c.size_class or "")):
        price = prices.price(c.quality_class, c.size_class)
        kg = c.weight_mg / 1e6
        lines.append({
            "quality_class": c.quality_class, "size_class": c.size_class, "fruit": c.fruit, "weight_kg": kg,
            "price_cny_per_kg": price, "value_cny": round(kg * price, 2),
        })
    gross = round(sum(line["value_cny"] for line in lines), 2)
    kg_total = packout.weight_mg / 1e6
    deductions: list[dict[str, Any]] = []
    for d in prices.deductions:
        amount = d.amount * kg_total if d.kind == "per_kg" else gross * d.amount / 100 if d.kind == "percent" else d.amount
        deductions.append({"name": d.name, "kind": d.kind, "rate": d.amount, "amount_cny": round(amount, 2)})
    payable = round(gross - sum(d["amount_cny"] for d in deductions), 2)
    return {
        "lot": dict(lot or {}), "currency": prices.currency, "weight_kg": kg_total, "lines": lines,
        "gross_cny": gross, "deductions": deductions, "payable_cny": payable,
    }


def settlement_csv(report: Mapping[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["quality_class", "size_class", "fruit", "weight_kg", "price_cny_per_kg", "value_cny"])
    for line in report["lines"]:
        writer.writerow([line["quality_class"], line["size_class"] or "", line["fruit"], f"{line['weight_kg']:.6f}",
                         f"{line['price_cny_per_kg']:.2f}", f"{line['value_cny']:.2f}"])
    writer.writerow(["gross", "", "", f"{report['weight_kg']:.6f}", "", f"{report['gross_cny']:.2f}"])
    for d in report["deductions"]:
        writer.writerow([f"deduction: {d['name']}", d["kind"], "", "", d["rate"], f"-{d['amount_cny']:.2f}"])
    writer.writerow(["payable", "", "", "", "", f"{report['payable_cny']:.2f}"])
    return out.getvalue()
