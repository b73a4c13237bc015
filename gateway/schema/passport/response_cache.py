"""Rendered passport queries, kept per caller until the passport changes.

A client shows the same passport over and over (`passport { timeline(first: 50) ... }`):
executing it calls GetPassport and GetTimeline and builds about fifty entries with their
groups, ~50 ms of CPU, while what it shows changes only when the passport service says
so. `PassportResponseCache` keeps the result of such a query and serves it again only
while both hold:

* **the same caller**: the key holds a digest of the exact `authorization` value sent
  (no token: anonymous), the document, the operation name and the variables, so one
  caller's result is never served to another, not even to the same user's other token;
* **the same version**: before serving, it asks the passport service for the passport's
  version (GetPassportVersion, authenticated and authorized like GetPassport: a revoked
  session, an expired token or a passport that stopped being public answers an error,
  and the query then runs as usual and answers it). The service bumps the version in the
  transaction of every change the query can show: entries, anchors, the learner's key,
  profile, privacy, and the display names of the owner and of every author of an entry.

So it never serves a result older than the last committed change when the version was
read; a result stored under a version may reflect a later one (never an earlier one).

Only documents that read nothing else are cached: one `passport` root field, and below
it only fields of `CACHED_FIELDS` (no `verification`: that reads the chain). Results with
errors are not kept. At most `max_bytes` of results by their JSON size (kept as the
result's Python objects, which take a few times that), least recently used first out.
Each gateway process (worker) has its own; the version lives in the passport's database,
so they all agree.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import grpc
from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    TypeInfo,
    TypeInfoVisitor,
    Visitor,
    get_named_type,
    visit,
)
from graphql.execution import ExecutionResult as GraphQLExecutionResult
from graphql.execution.values import get_argument_values, get_variable_values
from graphql.utilities import get_operation_ast
from strawberry.extensions import SchemaExtension

from gateway.errors import ClientError
from services.api.keiko.passport import v1 as pb

ROOT_FIELD = "passport"
# What a cached document may select, per type: values the passport service versions.
CACHED_FIELDS: Mapping[str, frozenset[str]] = {
    "Query": frozenset({ROOT_FIELD}),
    "Passport": frozenset(
        {
            "id",
            "ownerId",
            "ownerDisplayName",
            "ed25519PublicKey",
            "entryCount",
            "learningProfile",
            "privacySettings",
            "createdAt",
            "updatedAt",
            "timeline",
        }
    ),
    "TimelineConnection": frozenset({"edges", "pageInfo"}),
    "TimelineEdge": frozenset({"cursor", "node"}),
    "PageInfo": frozenset({"hasNextPage", "endCursor"}),
    "TimelineGroup": frozenset({"level", "id", "title", "children", "entries"}),
    "PassportEntry": frozenset(
        {
            "statementId",
            "interactionType",
            "summary",
            "timestamp",
            "scoreScaled",
            "statementJson",
            "signatureHex",
            "publicKeyHex",
            "anchor",
            "proofLeaf",
            "proof",
            "author",
        }
    ),
    "EntryAuthor": frozenset({"kind", "id", "displayName", "publicKeyHex", "legacy", "label"}),
    "InteractionAnchor": frozenset(
        {"status", "batchId", "merkleRoot", "txHash", "blockNumber", "failureReason", "anchoredAt"}
    ),
    "LearningProfile": frozenset(
        {
            "learningStyle",
            "learningStyleScores",
            "preferences",
            "strengths",
            "areasForImprovement",
            "lastAssessment",
        }
    ),
    "LearningStyleScores": frozenset({"visual", "auditory", "readingWriting", "kinesthetic"}),
    "LearningPreferences": frozenset(
        {"pace", "interactionStyle", "feedbackFrequency", "difficultyProgression"}
    ),
    "Skill": frozenset({"domain", "level", "confidence", "lastUpdated"}),
    "PrivacySettings": frozenset({"public", "publicDisclosure", "shareLinkDisclosure"}),
    "Disclosure": frozenset(
        {"interactionTypes", "courseIds", "showScores", "showIdentity", "showContent"}
    ),
}
MAX_PLANS = 256
MAX_TEXT = 16 * 1024


@dataclass(frozen=True, slots=True)
class Plan:
    """A cacheable operation: its `passport` root field."""

    operation: OperationDefinitionNode
    field: FieldNode

    def passport_id(self, schema: GraphQLSchema, variables: Mapping[str, Any]) -> str | None:
        """The `id` argument (empty: the caller's own), None when the variables do not
        coerce (execution then reports it)."""
        if not self.field.arguments:
            return ""
        coerced = get_variable_values(
            schema, self.operation.variable_definitions or (), dict(variables)
        )
        if not isinstance(coerced, dict):
            return None
        query = schema.query_type
        assert query is not None
        args = get_argument_values(query.fields[ROOT_FIELD], self.field, coerced)
        value = args.get("id")
        return "" if value is None else str(value)


def plan_of(
    schema: GraphQLSchema, document: DocumentNode, operation_name: str | None
) -> Plan | None:
    """The plan of a document made only of a `passport` query over `CACHED_FIELDS`."""
    operation = get_operation_ast(document, operation_name)
    if operation is None or operation.operation is not OperationType.QUERY:
        return None
    roots = [
        s
        for s in operation.selection_set.selections
        if not (isinstance(s, FieldNode) and s.name.value == "__typename")
    ]
    if len(roots) != 1 or not isinstance(roots[0], FieldNode) or roots[0].name.value != ROOT_FIELD:
        return None
    type_info = TypeInfo(schema)
    allowed = _OnlyCachedFields(type_info)
    # The whole document, every operation and fragment in it: stricter than needed.
    visit(document, TypeInfoVisitor(type_info, allowed))
    return Plan(operation, roots[0]) if allowed.ok else None


class _OnlyCachedFields(Visitor):
    def __init__(self, type_info: TypeInfo) -> None:
        super().__init__()
        self.type_info = type_info
        self.ok = True

    def enter_field(self, node: FieldNode, *_: Any) -> None:
        name = node.name.value
        if name == "__typename":
            return
        parent = self.type_info.get_parent_type()
        parent_name = get_named_type(parent).name if parent is not None else ""
        if name not in CACHED_FIELDS.get(parent_name, frozenset()):
            self.ok = False


@dataclass(slots=True)
class _Rendered:
    version: int
    data: dict[str, Any]
    size: int


class RenderedPassports:
    """The results, per caller and document, and the plans, per document (one per
    schema: build_schema makes it)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._results: OrderedDict[tuple[str, ...], _Rendered] = OrderedDict()
        self._plans: OrderedDict[tuple[str, str], Plan | None] = OrderedDict()

    def plan(
        self, schema: GraphQLSchema, text: str, document: DocumentNode, operation: str | None
    ) -> Plan | None:
        key = (text, operation or "")
        if key in self._plans:
            self._plans.move_to_end(key)
            return self._plans[key]
        found = plan_of(schema, document, operation)
        self._plans[key] = found
        while len(self._plans) > MAX_PLANS:
            self._plans.popitem(last=False)
        return found

    def get(self, key: tuple[str, ...], version: int) -> dict[str, Any] | None:
        found = self._results.get(key)
        if found is None or found.version != version:
            return None
        self._results.move_to_end(key)
        return found.data

    def put(self, key: tuple[str, ...], version: int, data: dict[str, Any]) -> None:
        size = len(json.dumps(data, separators=(",", ":"), default=str))
        if size > self.max_bytes:
            return
        old = self._results.get(key)
        if old is not None:
            if old.version > version:
                return  # a newer result is already here
            self.bytes -= old.size
        self._results[key] = _Rendered(version, data, size)
        self._results.move_to_end(key)
        self.bytes += size
        while self.bytes > self.max_bytes:
            _, evicted = self._results.popitem(last=False)
            self.bytes -= evicted.size

    def __len__(self) -> int:
        return len(self._results)


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


class PassportResponseCache(SchemaExtension):
    """Serves a rendered `passport` query again while its passport's version holds (see
    the module docstring). Runs at execution: after the cost limit and validation."""

    def __init__(self, store: RenderedPassports) -> None:
        self.store = store

    async def on_execute(self) -> AsyncIterator[None]:
        ctx = self.execution_context
        text = ctx.query
        document = ctx.graphql_document
        if not text or len(text) > MAX_TEXT or document is None or self.store.max_bytes <= 0:
            yield
            return
        schema = ctx.schema._schema
        plan = self.store.plan(schema, text, document, ctx.operation_name)
        variables = ctx.variables or {}
        passport_id = None if plan is None else plan.passport_id(schema, variables)
        authorization = str(getattr(ctx.context, "authorization", None) or "")
        if passport_id is None or (not passport_id and not authorization):
            yield  # not cacheable, or an anonymous caller's own passport: no such thing
            return
        version = await self._version(ctx.context, passport_id)
        if version is None:
            yield  # the query runs and answers whatever refused the version
            return
        resolved, number = version
        key = (
            _digest(authorization),
            resolved,
            text,
            ctx.operation_name or "",
            json.dumps(variables, sort_keys=True, default=str),
        )
        cached = self.store.get(key, number)
        if cached is not None:
            ctx.result = GraphQLExecutionResult(data=cached, errors=None)
            yield
            return
        yield
        result = ctx.result
        if isinstance(result, GraphQLExecutionResult) and not result.errors and result.data:
            self.store.put(key, number, result.data)

    @staticmethod
    async def _version(context: Any, passport_id: str) -> tuple[str, int] | None:
        try:
            client = context.client(pb.PassportServiceStub)
            reply = await client.get_passport_version(
                pb.GetPassportVersionRequest(passport_id=passport_id)
            )
        except (grpc.aio.AioRpcError, ClientError):
            return None
        return reply.passport_id, int(reply.version)
