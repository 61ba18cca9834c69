"""One carton label with every field filled, for the label and printer tests."""

from __future__ import annotations

from datetime import date, datetime

from grading.trace.codes import PrivacyLevel, carton_code
from grading.trace.labels import CartonLabel, ComplianceCertificate


def carton_label(*, privacy: PrivacyLevel = PrivacyLevel.masked, trace_code: str | None = "53042410001202509150001",
                 lot: str = "YN2509A", serial: int = 123) -> CartonLabel:
    code = carton_code(gtin="16901234567899", lot=lot, serial=serial, pack_date=date(2025, 9, 15), net_weight_g=12500)
    return CartonLabel(
        code=code, digital_link=code.digital_link("https://trace.example.cn"), product="沃柑",
        quality_class="特级", size_class="L", origin="云南省玉溪市华宁县盘溪镇", grower="张三丰",
        grower_privacy=privacy, fruit_count=48, platform_trace_code=trace_code, packing_center="华宁县果品分选中心",
        certificate=ComplianceCertificate(
            product_name="沃柑", quantity="12.5 kg / 48 个", origin="云南省玉溪市华宁县", issuer="华宁县果品分选中心",
            contact="0877-1234567", issued_at=datetime(2025, 9, 15, 10, 30), lots=("YN2509A", "YN2509B"),
        ),
    )
