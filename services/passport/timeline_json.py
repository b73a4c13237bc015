"""A timeline page as one JSON document (GetTimelineRequest.groups_json): the same groups,
entries, anchors and authors as the TimelineGroup messages of `messages.group_to_pb`,
under the same disclosure, built from the entries in one pass and encoded by orjson. The
gateway reads it in a few microseconds where decoding the message tree of a 50-entry page
took milliseconds (docs/api.md, "Timeline as JSON").

Field names are the messages' (snake_case); enums are their names without the prefix
(``"ANCHORED"``, ``"COURSE"``, ``"SELF"``, ``"QUESTION"``); times are RFC 3339; a field
the message leaves unset (``score_scaled``, ``anchored_at``) is null, as is an unknown
interaction type; ``statement_json`` is "" when the content is not disclosed.
"""

from __future__ import annotations

from typing import Any

import orjson

from services.passport.domain import (
    INTERACTION_TYPES,
    Disclosure,
    Entry,
    Group,
    Level,
    Statements,
)

_LEVELS = {level: level.name for level in Level}
_TYPES = {name: name.upper() for name in INTERACTION_TYPES}


def _anchor(entry: Entry) -> dict[str, Any]:
    a = entry.anchor
    status = a.status.value
    if status == "anchored" and a.proof is None:
        status = "pending"  # anchored, but its inclusion proof is not here yet (anchor_to_pb)
    return {
        "status": status.upper(),
        "batch_id": a.batch_id,
        "merkle_root": a.root,
        "leaf_index": a.leaf_index,
        "block_number": a.block,
        "tx_hash": a.tx_hash,
        "failure_reason": a.failure_reason,
        "anchored_at": a.anchored_at if status == "anchored" else None,
    }


def entry_json(entry: Entry, disclosure: Disclosure, statements: Statements) -> dict[str, Any]:
    """One entry as `messages.entry_to_pb` shows it."""
    statement = statements.of(entry)
    show_scores = disclosure.show_scores
    author = entry.author(disclosure.show_identity)
    return {
        "statement_id": entry.statement_id,
        "interaction_type": _TYPES.get(entry.interaction_type),
        "summary": entry.summary(show_scores, statement),
        "timestamp": entry.timestamp,
        "score_scaled": entry.score_scaled(statement) if show_scores else None,
        "statement_json": entry.statement_json if disclosure.show_content else "",
        "signature_hex": entry.signature_hex,
        "public_key_hex": entry.public_key_hex,
        "anchor": _anchor(entry),
        "proof_leaf": entry.anchor.leaf,
        "proof": list(entry.anchor.proof or ()),
        "leaf_encoding": entry.anchor.leaf_encoding,
        "author": {
            "kind": author.kind.name,
            "id": author.id,
            "display_name": author.display_name,
            "public_key_hex": author.public_key.hex(),
            "legacy": entry.legacy,
            "label": entry.author_label(disclosure.show_identity, author),
        },
    }


def _group_json(group: Group, disclosure: Disclosure, statements: Statements) -> dict[str, Any]:
    return {
        "level": _LEVELS[group.level],
        "id": group.id,
        "title": group.title,
        "children": [_group_json(g, disclosure, statements) for g in group.children],
        "entries": [entry_json(e, disclosure, statements) for e in group.entries],
    }


def groups_json(groups: list[Group], disclosure: Disclosure, statements: Statements) -> str:
    """The page's top-level groups as a JSON array (a str: betterproto copies a string
    field far faster than bytes). ``statements``: those `group_entries` parsed."""
    return orjson.dumps([_group_json(g, disclosure, statements) for g in groups]).decode()
