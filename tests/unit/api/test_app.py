"""The HTTP API over a line handle: routes, problem+json errors, and /metrics parsed independently."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from api.app import create_app
from grading.access import Role
from grading.weighing import WEIGH_CAUSES
from tests.unit.api.conftest import Api, line_factory


def test_line_state_start_stop(api: Api) -> None:
    op = api.bearer(Role.operator)
    state = api.client.get("/api/v1/line", headers=api.bearer(Role.integrator)).json()
    assert state["state"] == "stopped"
    assert state["lot"] == "LOT-9"
    for key in ("fruit_total", "fruit_per_second", "quality_classes", "size_classes", "outlets"):
        assert key in state
    assert api.client.post("/api/v1/line/start", headers=op).json()["state"] == "running"
    assert api.client.get("/api/v1/health").json() == {"status": "ok", "line": "running"}
    assert api.client.post("/api/v1/line/stop", headers=op).json()["state"] == "stopped"


def test_metrics_answer_directly_in_prometheus_text(api: Api) -> None:
    api.client.post("/api/v1/line/start", headers=api.bearer(Role.operator))
    response = api.client.get("/metrics", headers=api.bearer(Role.integrator))
    assert response.status_code == 200  # no 307 to /metrics/
    assert response.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    running = families["gradeline_line_running"].samples
    assert [(s.labels, s.value) for s in running] == [({"line": "line-1"}, 1.0)]
    assert families["gradeline_outlet_late_decisions"].type == "counter"
    assert families["gradeline_decision_latency_seconds"].type == "histogram"
    causes = {s.labels.get("cause") for s in families["gradeline_weighing_failures"].samples}
    assert causes <= set(WEIGH_CAUSES)
    assert "process_cpu_seconds" in families


def test_metrics_need_no_token_from_loopback_only(tmp_path: Path) -> None:
    app = create_app(line_factory(tmp_path))
    with TestClient(app, client=("127.0.0.1", 40000)) as local:
        assert local.get("/metrics").status_code == 200
    with TestClient(app, client=("10.1.2.3", 40000)) as remote:
        assert remote.get("/metrics").status_code == 401


def test_starting_line_answers_503_problem_json(api: Api) -> None:
    api.app.state.line = None  # as between start-up and the line being ready
    response = api.client.get("/api/v1/line", headers=api.bearer(Role.admin))
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 503
    assert api.client.get("/api/v1/health").json() == {"status": "starting"}


def test_hmi_page_is_chinese_first_and_serves_its_own_assets(api: Api) -> None:
    page = api.client.get("/")
    assert page.status_code == 200
    assert '<html lang="zh-CN">' in page.text
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert "http://" not in page.text and "https://" not in page.text  # no CDN
    assert api.client.get("/assets/hmi/app.js").headers["content-type"].startswith("text/javascript")
    assert api.client.get("/assets/swagger/swagger-ui-bundle.js").status_code == 200
    docs = api.client.get("/docs").text
    assert "/assets/swagger/swagger-ui-bundle.js" in docs and "cdn" not in docs.lower()
    for outside in ("/assets/../app.py", "/assets/%2e%2e/app.py", "/assets/index.html", "/assets/nothing.js"):
        missing = api.client.get(outside)
        assert missing.status_code == 404, outside
        assert missing.headers["content-type"] == "application/problem+json"
