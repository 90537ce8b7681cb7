"""deploy_mode: zero downtime only where the running release can keep serving, and a reason either way."""

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.ablage.ops.plugins.filter.release import deploy_mode

ADDITIVE = {"pending": ["0005"], "online": {"mode": "online", "reason": "every statement is additive", "blockers": []}}
NOTHING = {"pending": [], "online": {"mode": "online", "reason": "nothing is pending", "blockers": []}}
BLOCKING = {
    "pending": ["0002"],
    "online": {
        "mode": "maintenance",
        "reason": "adding a CHECK constraint on documents without NOT VALID.",
        "blockers": [{}],
    },
}


def test_window_strategy_never_asks_the_migration() -> None:
    assert deploy_mode(None, "window", True, 1) == {
        "mode": "window",
        "reason": "ablage_deploy_strategy is window",
        "refuse": None,
    }


@pytest.mark.parametrize("strategy", ["auto", "zero_downtime"])
def test_additive_migration_keeps_users_served(strategy: str) -> None:
    mode = deploy_mode(ADDITIVE, strategy, True, 1)
    assert mode["mode"] == "zero_downtime" and mode["refuse"] is None
    assert "0005" in mode["reason"]


def test_nothing_pending_is_zero_downtime() -> None:
    assert deploy_mode(NOTHING, "auto", True, 1)["reason"] == "no migration is pending"


def test_auto_falls_back_to_the_window_and_says_why() -> None:
    mode = deploy_mode(BLOCKING, "auto", True, 1)
    assert mode == {
        "mode": "window",
        "reason": "the migration needs maintenance: adding a CHECK constraint on documents without NOT VALID",
        "refuse": None,
    }


@pytest.mark.parametrize(
    ("review", "proxy", "hosts", "cause"),
    [
        (BLOCKING, True, 1, "needs maintenance"),
        (ADDITIVE, False, 1, "ablage_proxy_enabled is false"),
        (ADDITIVE, True, 2, "this play has 2"),
        ({"skipped": True}, True, 1, "not reviewed"),
        ({"pending": ["0005"]}, True, 1, "no verdict"),
    ],
)
def test_required_zero_downtime_refuses_with_the_cause(
    review: dict[str, object], proxy: bool, hosts: int, cause: str
) -> None:
    mode = deploy_mode(review, "zero_downtime", proxy, hosts)
    assert mode["mode"] == "window"
    assert cause in mode["reason"] and mode["refuse"] is not None
    assert cause in mode["refuse"] and "Nothing was changed" in mode["refuse"]


def test_unknown_strategy_is_named() -> None:
    with pytest.raises(AnsibleFilterError, match="one of window, zero_downtime, auto, got 'blue-green'"):
        deploy_mode(ADDITIVE, "blue-green", True, 1)
