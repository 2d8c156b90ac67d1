"""The alerts page: what Alertmanager delivered to Conveyor's receiver, firing first, with
the history of state changes, so a team without Slack or email still sees its alerts."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from conveyor.api.routes import alerts as alerts_api
from conveyor.auth.service import Principal
from conveyor.web.routes import Viewer, _page

router = APIRouter(include_in_schema=False)


@router.get("/alerts", name="web_alerts")
def alerts_page(request: Request, principal: Principal = Viewer) -> Response:
    found = alerts_api.list_alerts(request, None, 200)
    firing = [alert for alert in found.alerts if alert.status == "firing"]
    resolved = [alert for alert in found.alerts if alert.status != "firing"]
    return _page(
        request,
        "alerts.html",
        principal,
        firing=firing,
        resolved=resolved,
        history=found.history,
    )
