"""Prometheus' alerts answer as the monitoring gate, verify's wait and the report read it."""

from __future__ import annotations

import typing as t

import pytest

from ansible_collections.ablage.ops.plugins.module_utils._alerts import alert_name, firing_alerts


def answer(*alerts: t.Any) -> dict[str, t.Any]:
    return {"status": "success", "data": {"alerts": list(alerts)}}


def test_firing_alerts_keeps_only_firing_ones_in_order() -> None:
    down = {"labels": {"alertname": "AblageBackendDown"}, "state": "firing"}
    disk = {"labels": {"alertname": "DiskAlmostFull"}, "state": "firing"}
    pending = {"labels": {"alertname": "QueueBacklog"}, "state": "pending"}
    assert firing_alerts(answer(down, pending, "not an alert", disk)) == [down, disk]


@pytest.mark.parametrize(
    "body",
    [None, "", [], {"data": None}, {"data": {"alerts": None}}, {"data": {"alerts": "firing"}}, {"status": "error"}],
)
def test_firing_alerts_of_something_else_is_empty(body: t.Any) -> None:
    assert firing_alerts(body) == []


@pytest.mark.parametrize(
    ("alert", "name"),
    [
        ({"labels": {"alertname": "AblageBackendDown"}}, "AblageBackendDown"),
        ({"labels": {"alertname": 5}}, "5"),
        ({"labels": {"alertname": "  "}}, "an alert without name"),
        ({"labels": {"alertname": None}}, "an alert without name"),
        ({"labels": {}}, "an alert without name"),
        ({"labels": "AblageBackendDown"}, "an alert without name"),
        ({}, "an alert without name"),
        ("AblageBackendDown", "an alert without name"),
    ],
)
def test_alert_name(alert: t.Any, name: str) -> None:
    assert alert_name(alert) == name
