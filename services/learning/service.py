"""The learning service: its capabilities composed on one database, clock and outbox.

Each capability is a package read the same way (domain, storage, use cases, servicer):

* `statements`: the xAPI record store (record, read, query, void; anchoring state);
* `documents`: the State, Activity Profile and Agent Profile documents;
* `activities`: canonical Activity definitions, Person objects, statement formats;
* `hierarchy`: courses and classes;
* `sessions`: tutorial sessions (human, AI, group) and study sessions;
* `interactions`: atomic interactions recorded in the hierarchy, device signing, watching;
* `clients`: LRS client credentials for the xAPI resources;
* `links`: external xAPI identities linked to learners (actor linking);
* `webhooks`: imports from Learning Locker, SCORM Cloud, Moodle and Canvas.

Every use case takes the authenticated caller (`Principal`) and authorizes each object
(see each capability's `usecases.py`).
"""

from __future__ import annotations

from collections.abc import Callable

from services.kit.clock import Clock
from services.kit.db import Database
from services.learning.activities.usecases import Activities
from services.learning.clients.usecases import LrsClients
from services.learning.common.usecases import LearningContext
from services.learning.documents.usecases import Documents
from services.learning.hierarchy.usecases import Hierarchy
from services.learning.interactions.usecases import Interactions
from services.learning.links.usecases import Links
from services.learning.sessions.usecases import Sessions
from services.learning.statements.usecases import Statements
from services.learning.webhooks.usecases import Webhooks


class LearningService:
    def __init__(self, database: Database, clock: Clock) -> None:
        self.ctx = LearningContext(database, clock)
        self.activities = Activities(self.ctx)
        self.links = Links(self.ctx)
        self.statements = Statements(self.ctx, self.activities, self.links)
        self.documents = Documents(self.ctx)
        self.hierarchy = Hierarchy(self.ctx)
        self.sessions = Sessions(self.ctx)
        self.interactions = Interactions(self.ctx, self.statements, self.sessions)
        self.clients = LrsClients(self.ctx)
        self.webhooks = Webhooks(self.ctx, self.statements)

    @property
    def db(self) -> Database:
        return self.ctx.db

    @property
    def clock(self) -> Clock:
        return self.ctx.clock

    @property
    def on_commit(self) -> list[Callable[[], object]]:
        """Callbacks run after a commit that enqueued events (the outbox relay's notify)."""
        return self.ctx.on_commit


__all__ = ["LearningService"]
