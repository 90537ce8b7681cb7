"""What differs between builds of Ablage-System in the API (the settings in config.py):
the queue's field names in /health/pipeline and the body of the JSON export."""

from __future__ import annotations

from typing import Any


def queue_view(depth: dict[str, int], fields: tuple[str, str, str]) -> dict[str, dict[str, int]]:
    """{"pending": n, "processing": m} under the configured names: (object, pending, processing)."""
    obj, pending, processing = fields
    return {obj: {pending: int(depth["pending"]), processing: int(depth["processing"])}}


def export_json(document: dict[str, Any], style: str, exported_at: str) -> dict[str, Any]:
    """The JSON export: the whole document ("document") or only its id and text ("text")."""
    if style == "text":
        body = {"document_id": document["id"], "text": document["text"]}
        if "page_count" in document:
            body["page_count"] = document["page_count"]
    else:
        body = dict(document)
    body["exported_at"] = exported_at
    body["format"] = "json"
    return body
