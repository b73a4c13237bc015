"""The `learning` schema: every capability's tables on one MetaData (what migrations and
the schema drift test compare against). Each table is defined in its capability's
`storage.py`; the shared ones (idempotency keys, outbox, processed events) in
`common/storage.py`."""

from __future__ import annotations

from services.learning.activities.storage import activity_definitions
from services.learning.clients.storage import lrs_clients
from services.learning.common.storage import (
    SCHEMA,
    metadata,
    outbox,
    processed_events,
    request_keys,
)
from services.learning.documents.storage import document_usage, documents
from services.learning.hierarchy.storage import classes, courses
from services.learning.interactions.storage import prepared_interactions
from services.learning.links.storage import actor_link_codes, actor_links
from services.learning.sessions.storage import (
    study_sessions,
    tutorial_participants,
    tutorial_sessions,
)
from services.learning.statements.tables import (
    attachments,
    statement_activities,
    statement_agents,
    statement_attachments,
    statements,
)
from services.learning.webhooks.storage import webhook_deliveries, webhook_sources

__all__ = [
    "SCHEMA",
    "activity_definitions",
    "actor_link_codes",
    "actor_links",
    "attachments",
    "classes",
    "courses",
    "document_usage",
    "documents",
    "lrs_clients",
    "metadata",
    "outbox",
    "prepared_interactions",
    "processed_events",
    "request_keys",
    "statement_activities",
    "statement_agents",
    "statement_attachments",
    "statements",
    "study_sessions",
    "tutorial_participants",
    "tutorial_sessions",
    "webhook_deliveries",
    "webhook_sources",
]
