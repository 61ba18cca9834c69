"""The codes gradeline gives cartons, pallets and the packing center, and their configuration.

Owns ``TraceConfig`` (the ``[trace]`` table of the line's TOML: company prefix, packing-center
GLN, the GTIN of each product x quality class x size class, the Digital Link base URL, the SSCC
extension digit and the grower privacy setting), with every GS1 key checked for length and
check digit and the failing field named; and the builders of a carton's element string and
Digital Link URI and a pallet's SSCC. Serial numbers come from ``grading.trace.serials``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from grading.trace.gs1 import (
    Element,
    GS1Error,
    bracketed,
    build_digital_link,
    check_element,
    element_string,
    hri,
)
from grading.trace.linters import check_digit, has_valid_check_digit


def _key(length: int, what: str) -> AfterValidator:
    def check(value: str) -> str:
        if not (value.isascii() and value.isdigit()) or len(value) != length:
            raise ValueError(f"a {what} is {length} digits, got {value!r}")
        if not has_valid_check_digit(value):
            raise ValueError(f"{what} {value} has a wrong check digit (should end in {check_digit(value[:-1])})")
        return value
    return AfterValidator(check)


Gtin14 = Annotated[str, _key(14, "GTIN-14")]
Gln = Annotated[str, _key(13, "GLN")]


def _company_prefix(value: str) -> str:
    if not (value.isascii() and value.isdigit()) or not 6 <= len(value) <= 12:
        raise ValueError(f"a GS1 Company Prefix is 6 to 12 digits, got {value!r}")
    if value.startswith(("02", "04", "05", "2")) or value.startswith("000"):
        # restricted circulation (020-029, 040-049, 200-299), coupons (05) and GTIN-8 space
        raise ValueError(f"{value} is not a GS1 Company Prefix usable outside the store (restricted prefix)")
    return value


CompanyPrefix = Annotated[str, AfterValidator(_company_prefix)]


class PrivacyLevel(StrEnum):
    """How much of the grower a label or consumer page shows."""

    full = "full"  # the grower's name
    masked = "masked"  # family name and a mask: 张**
    hidden = "hidden"  # nothing


def present_grower(name: str | None, level: PrivacyLevel) -> str | None:
    """The grower as a label or the consumer page shows them: 张三丰 -> 张三丰, 张**, or None."""
    if not name or level is PrivacyLevel.hidden:
        return None
    if level is PrivacyLevel.masked:
        return name[0] + "*" * max(1, len(name) - 1)
    return name


class ProductGtin(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product: str = Field(min_length=1, description="Product name as in recipes, e.g. 沃柑.")
    quality_class: str = Field(min_length=1, description="Quality class: 特级, 一级 or 二级 (or the recipe's code).")
    size_class: str = Field(min_length=1, description="Size class name of the recipe, e.g. L.")
    gtin: Gtin14 = Field(description="GTIN-14 of this carton kind (indicator 1-8), check digit included.")


class TraceConfig(BaseModel):
    """``[trace]``: GS1 identifiers of the packing center and its cartons."""

    model_config = ConfigDict(extra="forbid")

    company_prefix: CompanyPrefix = Field(description="GS1 Company Prefix licensed from GS1 China (690-699...).")
    packing_center_gln: Gln = Field(description="GLN of the packing center (AI 414), check digit included.")
    sscc_extension_digit: int = Field(0, ge=0, le=9, description="Extension digit of the SSCCs this line issues.")
    digital_link_base: str = Field(
        pattern=r"^https?://[^/?#\s]+(/[^?#\s]*[^/?#\s])?$",
        description="Scheme, domain and optional path of the resolver, without a trailing slash.",
    )
    grower_privacy: PrivacyLevel = Field(PrivacyLevel.masked, description="Grower name on labels and the consumer page.")
    origin: str = Field("", description="Origin printed on labels, e.g. 云南省玉溪市华宁县.")
    gtins: list[ProductGtin] = Field(default_factory=list, description="GTIN per product x quality class x size class.")
    product_names: dict[str, str] = Field(
        default_factory=dict, description="Name printed per recipe product id, e.g. {wogan = \"沃柑\"}; default the id.",
    )
    intake_gtins: dict[str, Gtin14] = Field(
        default_factory=dict,
        description="GTIN of the ungraded fruit per recipe product id: the input class of EPCIS TransformationEvents.",
    )
    packing_center: str = Field("", description="承诺主体 on the labels' certificate: the packing center's name.")
    contact: str = Field("", description="联系方式 on the labels' certificate.")
    printer_host: str | None = Field(None, min_length=1, description="ZPL label printer (raw TCP); none: no printing.")
    printer_port: int = Field(9100, ge=1, le=65535, description="The label printer's raw TCP port.")
    serial_block: int = Field(
        1, ge=1, le=1000,
        description="Carton serials reserved per database commit; the unused rest of a block is skipped after a crash.",
    )

    @model_validator(mode="after")
    def _unique(self) -> TraceConfig:
        seen: set[tuple[str, str, str]] = set()
        for index, entry in enumerate(self.gtins):
            key = (entry.product, entry.quality_class, entry.size_class)
            if key in seen:
                raise ValueError(f"gtins[{index}]: {key} is listed twice")
            seen.add(key)
        return self

    def gtin_for(self, product: str, quality_class: str, size_class: str) -> str:
        for entry in self.gtins:
            if (entry.product, entry.quality_class, entry.size_class) == (product, quality_class, size_class):
                return entry.gtin
        raise KeyError(f"no GTIN configured for {product} / {quality_class} / {size_class} ([trace] gtins)")


@dataclass(frozen=True)
class CartonCode:
    """The GS1 identity of one carton and the strings that carry it."""

    gtin: str
    lot: str
    serial: str
    pack_date: date
    net_weight_g: int

    @property
    def elements(self) -> tuple[Element, ...]:
        return (
            Element("01", self.gtin),
            Element("3103", f"{self.net_weight_g:06d}"),  # kg with 3 decimals = grams
            Element("13", self.pack_date.strftime("%y%m%d")),
            Element("10", self.lot),
            Element("21", self.serial),
        )

    def elements_in_order(self) -> tuple[Element, ...]:
        """The elements as the element string and HRI carry them (predefined lengths first)."""
        return self.elements  # already in that order: (01) (3103) (13), then (10) (21)

    def element_string(self) -> str:
        return element_string(self.elements)

    def hri(self) -> str:
        return hri(self.elements)

    def bracketed(self) -> str:
        return bracketed(self.elements)

    def digital_link(self, base_url: str) -> str:
        return build_digital_link(
            base_url, Element("01", self.gtin), (Element("10", self.lot), Element("21", self.serial)),
            (Element("13", self.pack_date.strftime("%y%m%d")), Element("3103", f"{self.net_weight_g:06d}")),
        )


def carton_code(*, gtin: str, lot: str, serial: int | str, pack_date: date, net_weight_g: int) -> CartonCode:
    """A carton's code, checked: raises ``GS1Error`` naming the AI that is wrong."""
    if not 0 < net_weight_g <= 999_999:
        raise GS1Error(f"AI (3103): net weight {net_weight_g} g does not fit 6 digits of grams")
    code = CartonCode(gtin=gtin, lot=lot, serial=str(serial), pack_date=pack_date, net_weight_g=net_weight_g)
    code.element_string()  # validates every element and the pairings
    return code


def sscc(*, extension_digit: int, company_prefix: str, serial_reference: int) -> str:
    """SSCC-18: extension digit + company prefix + serial reference (zero-padded) + check digit."""
    width = 16 - len(company_prefix)
    if not 0 <= extension_digit <= 9:
        raise GS1Error("SSCC extension digit must be 0-9")
    if not 0 <= serial_reference < 10**width:
        raise GS1Error(f"SSCC serial reference {serial_reference} does not fit {width} digits")
    payload = f"{extension_digit}{company_prefix}{serial_reference:0{width}d}"
    code = payload + check_digit(payload)
    check_element("00", code)
    return code


def gln_element(gln: str) -> Element:
    check_element("414", gln)
    return Element("414", gln)
