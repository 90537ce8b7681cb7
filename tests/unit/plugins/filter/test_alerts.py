"""Which firing alerts verify waits for (they began during the deploy) and which fail at once."""

from __future__ import annotations

import datetime as dt

import pytest

from ansible_collections.ablage.ops.plugins.filter.alerts import alerts_by_start
from ansible_collections.ablage.ops.plugins.module_utils._alerts import parse_time

SINCE = "2026-12-05T13:00:00Z"


def answer(*alerts: tuple[str, str, str | None]) -> dict:
    return {
        "status": "success",
        "data": {
            "alerts": [
                {"labels": {"alertname": name}, "state": state, **({"activeAt": at} if at is not None else {})}
                for name, state, at in alerts
            ]
        },
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-05T13:00:00Z", dt.datetime(2026, 12, 5, 13, 0, 0, tzinfo=dt.UTC)),
        # Prometheus writes nanoseconds; the fraction is cut to microseconds.
        ("2026-12-05T13:00:01.123456789Z", dt.datetime(2026, 12, 5, 13, 0, 1, 123456, tzinfo=dt.UTC)),
        ("2026-12-05T14:00:00+01:00", dt.datetime(2026, 12, 5, 13, 0, 0, tzinfo=dt.UTC)),
        ("2026-12-05T13:00:00", dt.datetime(2026, 12, 5, 13, 0, 0, tzinfo=dt.UTC)),
        ("", None),
        (None, None),
        ("yesterday", None),
        ("2026-13-05T13:00:00Z", None),
    ],
)
def test_parse_time(text: str | None, expected: dt.datetime | None) -> None:
    assert parse_time(text) == expected


def test_an_alert_that_began_during_the_deploy_is_waited_for() -> None:
    split = alerts_by_start(answer(("AblageBackendDown", "firing", "2026-12-05T13:01:30.5Z")), SINCE)
    assert split == {"before": [], "during": ["AblageBackendDown (active since 2026-12-05T13:01:30.5Z)"]}


def test_an_alert_pending_before_the_deploy_fails_at_once() -> None:
    split = alerts_by_start(answer(("DiskAlmostFull", "firing", "2026-12-05T12:59:59.999Z")), SINCE)
    assert split == {"before": ["DiskAlmostFull (active since 2026-12-05T12:59:59.999Z)"], "during": []}


def test_pending_and_inactive_alerts_are_not_firing() -> None:
    split = alerts_by_start(
        answer(("A", "pending", "2026-12-05T13:05:00Z"), ("B", "inactive", "2026-12-05T12:00:00Z")), SINCE
    )
    assert split == {"before": [], "during": []}


def test_without_a_deploy_every_firing_alert_counts_as_found() -> None:
    split = alerts_by_start(answer(("AblageBackendDown", "firing", "2026-12-05T13:01:30Z")))
    assert split["before"] == ["AblageBackendDown (active since 2026-12-05T13:01:30Z)"]
    assert split["during"] == []


def test_an_alert_without_a_start_counts_as_found() -> None:
    split = alerts_by_start(answer(("X", "firing", None), ("Y", "firing", "garbage")), SINCE)
    assert split["before"] == ["X (active since an unknown time)", "Y (active since garbage)"]


@pytest.mark.parametrize("bad", [None, {}, {"data": None}, {"data": {"alerts": None}}, "text", []])
def test_an_answer_without_alerts_has_none(bad: object) -> None:
    assert alerts_by_start(bad, SINCE) == {"before": [], "during": []}
