"""Reading pgBackRest 2.45's info, and the comparison that proves a recovery reached its restore point."""

from __future__ import annotations

import json

import pytest

from ansible_collections.ablage.ops.plugins.module_utils._pgbackrest import (
    RESTORE_POINT_NAME,
    InfoError,
    compare,
    newest_backup,
    parse_info,
)

# pgbackrest --stanza=ablage --output=json info of the reference stack (a full and an incremental backup).
INFO = [
    {
        "archive": [
            {
                "database": {"id": 1, "repo-key": 1},
                "id": "15-1",
                "max": "000000030000000000000006",
                "min": "000000010000000000000001",
            }
        ],
        "backup": [
            {
                "archive": {"start": "000000010000000000000002", "stop": "000000010000000000000003"},
                "error": False,
                "info": {"delta": 30685378, "repository": {"delta": 6042125, "size": 6042125}, "size": 30685378},
                "label": "20261205-132107F",
                "timestamp": {"start": 1796476867, "stop": 1796476870},
                "type": "full",
            },
            {
                "archive": {"start": "000000030000000000000005", "stop": "000000030000000000000005"},
                "error": False,
                "info": {"delta": 1200, "repository": {"delta": 300, "size": 6042425}, "size": 30685378},
                "label": "20261205-132107F_20261205-132715I",
                "timestamp": {"start": 1796477235, "stop": 1796477236},
                "type": "incr",
            },
        ],
        "name": "ablage",
        "status": {"code": 0, "lock": {"backup": {"held": False}}, "message": "ok"},
    }
]


def test_info_summarises_backups_oldest_first_and_the_archive() -> None:
    info = parse_info(json.dumps(INFO), "ablage")
    assert info["status"] == {"code": 0, "message": "ok"}
    assert [b["label"] for b in info["backups"]] == ["20261205-132107F", "20261205-132107F_20261205-132715I"]
    assert info["backups"][0] | {} == {
        "label": "20261205-132107F",
        "type": "full",
        "start": "2026-12-05T13:21:07Z",
        "stop": "2026-12-05T13:21:10Z",
        "stop_epoch": 1796476870,
        "size": 30685378,
        "repo_size": 6042125,
        "wal_start": "000000010000000000000002",
        "wal_stop": "000000010000000000000003",
        "error": False,
    }
    assert info["archive"] == {"min": "000000010000000000000001", "max": "000000030000000000000006"}
    assert newest_backup(info)["type"] == "incr"


def test_a_backup_with_an_error_is_not_the_newest_usable_one() -> None:
    broken = json.loads(json.dumps(INFO))
    broken[0]["backup"][1]["error"] = True
    assert newest_backup(parse_info(json.dumps(broken), "ablage"))["label"] == "20261205-132107F"


def test_a_missing_stanza_has_no_backups() -> None:
    missing = [{"name": "ablage", "status": {"code": 1, "message": "missing stanza path"}, "backup": [], "archive": []}]
    info = parse_info(json.dumps(missing), "ablage")
    assert info["status"]["code"] == 1 and newest_backup(info) is None and info["archive"] == {}


@pytest.mark.parametrize(
    ("text", "why"),
    [("not json", "not JSON"), ("[]", "no stanza 'ablage'"), (json.dumps([{"name": "other"}]), "no stanza 'ablage'")],
)
def test_info_that_does_not_describe_the_stanza_is_refused(text: str, why: str) -> None:
    with pytest.raises(InfoError, match=why):
        parse_info(text, "ablage")


POINT = {"revision": ["0001"], "row_counts": {"public.documents": 3, "public.ocr_jobs": 1}}


def test_a_recovery_to_the_point_compares_equal() -> None:
    result = compare(POINT, {"revision": ["0001"], "row_counts": {"public.documents": 3, "public.ocr_jobs": 1}})
    assert result == {
        "equal": True,
        "differences": [],
        "expected_revision": ["0001"],
        "actual_revision": ["0001"],
        "tables": 2,
        "rows": 4,
    }


def test_a_recovery_that_stopped_elsewhere_names_each_difference() -> None:
    result = compare(POINT, {"revision": ["0002"], "row_counts": {"public.documents": 5, "public.extra": 0}})
    assert not result["equal"]
    assert result["differences"] == [
        "Alembic revision ['0002'] instead of ['0001']",
        "public.documents: 5 rows instead of 3",
        "public.extra: 0 rows instead of none",
        "public.ocr_jobs: missing rows instead of 1",
    ]


def test_without_counts_from_the_point_nothing_is_proven() -> None:
    assert compare({"revision": None}, {"revision": None, "row_counts": {}})["equal"] is False


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("ablage-deploy-20261205T132708Z-38454137", True),
        ("a.b_c-1", True),
        ("-x", False),
        ("a b", False),
        ("a;drop", False),
        ("x" * 64, False),
        ("", False),
    ],
)
def test_restore_point_names(name: str, ok: bool) -> None:
    assert bool(RESTORE_POINT_NAME.match(name)) is ok
