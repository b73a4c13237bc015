"""Schema extensions: masked internal errors (with a code), operation limits, metrics."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

import structlog
from graphql import GraphQLError, OperationType
from strawberry.extensions import MaskErrors, SchemaExtension
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from gateway.cost import FragmentCycle, operation_cost
from gateway.errors import ClientError, should_mask
from services.kit.metrics import GRAPHQL_LATENCY, GRAPHQL_OPERATIONS

log = structlog.get_logger("keiko.gateway")

TOO_COSTLY = "OPERATION_TOO_COSTLY"


class MaskInternalErrors(MaskErrors):
    """Client errors pass; anything else becomes 'Internal server error.' with a code,
    and the original is logged so operators can find it by request id."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=should_mask, error_message="Internal server error.")

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        log.error("graphql resolver failed", path=error.path, error=repr(error.original_error))
        masked = super().anonymise_error(error)
        masked.extensions = {"code": "INTERNAL_SERVER_ERROR"}
        return masked


def _authenticated(context: Any) -> bool:
    return bool(getattr(context, "authenticated", False))


class OperationCostLimit(SchemaExtension):
    """Refuses an operation whose cost (gateway.cost) is over the caller's limit, before
    validation and execution: the standard validation rules and the depth and alias
    limiters all walk the fragment-expanded document, which is what makes a small
    document of nested fragments expensive. Anonymous callers get the lower limit."""

    def __init__(self, *, max_cost: int, max_anonymous_cost: int) -> None:
        self.max_cost = max_cost
        self.max_anonymous_cost = max_anonymous_cost

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if document is not None and context.pre_execution_errors is None:
            refusal = self._refusal(context)
            if refusal is not None:
                # Set before validation runs: strawberry then skips it altogether.
                context.pre_execution_errors = [refusal]
        yield

    def _refusal(self, context: Any) -> GraphQLError | None:
        authenticated = _authenticated(context.context)
        limit = self.max_cost if authenticated else self.max_anonymous_cost
        try:
            cost = operation_cost(
                context.schema._schema,
                context.graphql_document,
                context.operation_name,
                context.variables or {},
            )
        except FragmentCycle as cycle:
            return ClientError(str(cycle), "GRAPHQL_VALIDATION_FAILED")
        except RecursionError:
            return ClientError("the operation is nested too deeply", TOO_COSTLY, limit=limit)
        if cost <= limit:
            return None
        who = "authenticated" if authenticated else "anonymous"
        return ClientError(
            f"operation cost {cost} exceeds the limit of {limit} for {who} callers "
            "(each field costs 1, paged fields multiply by their page size)",
            TOO_COSTLY,
            cost=cost,
            limit=limit,
        )


class RequestErrorCodes(SchemaExtension):
    """Codes on GraphQL's own request errors, which carry none: a document that does not
    parse (GRAPHQL_PARSE_FAILED), fails validation (GRAPHQL_VALIDATION_FAILED) or has an
    argument literal its type refuses (BAD_USER_INPUT; a custom scalar's parse error
    arrives as the original error, which would otherwise be masked)."""

    def on_parse(self) -> Iterator[None]:
        yield
        for error in self.execution_context.pre_execution_errors or ():
            tag_request_error(error, "GRAPHQL_PARSE_FAILED")

    def on_validate(self) -> Iterator[None]:
        yield
        for error in self.execution_context.pre_execution_errors or ():
            tag_request_error(error, "GRAPHQL_VALIDATION_FAILED")


def tag_request_error(error: GraphQLError, code: str = "BAD_USER_INPUT") -> GraphQLError:
    """Mark `error`, in place, as a client's request error with `code`: a bad value (its
    original error a GraphQLError, ValueError or TypeError from a scalar) becomes
    BAD_USER_INPUT and loses its original error, so it is never masked. Anything else
    keeps its original error and is masked as ours."""
    if isinstance(error, ClientError) or (error.extensions or {}).get("code"):
        return error
    original = error.original_error
    if original is not None:
        if not isinstance(original, GraphQLError | ValueError | TypeError | OverflowError):
            return error
        error.original_error = None
        code = "BAD_USER_INPUT"
    elif error.message.startswith("Expected value of type"):
        code = "BAD_USER_INPUT"
    error.extensions = {**(error.extensions or {}), "code": code}
    return error


class ParsedDocumentCache(SchemaExtension):
    """Parses a document once: graphql-core's parser was about half of the CPU of a
    request for the (cached) passport query, whose document a client sends unchanged
    every time. Keyed by the text and the parse options (the token limit among them);
    only documents that parsed are kept (a failure takes strawberry's own path and
    answers GRAPHQL_PARSE_FAILED), at most `MAX_ENTRIES` of at most `MAX_TEXT`
    characters, least recently used out first. graphql-core never changes a document,
    so executions share it."""

    MAX_ENTRIES = 128
    MAX_TEXT = 8 * 1024

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        text = context.query
        if context.graphql_document is not None or not text or len(text) > self.MAX_TEXT:
            yield
            return
        parsed: OrderedDict[tuple[str, str], Any] = context.schema.__dict__.setdefault(
            "_keiko_parsed_documents", OrderedDict()
        )
        key = (text, repr(sorted(context.parse_options.items())))
        found = parsed.get(key)
        if found is not None:
            parsed.move_to_end(key)
            context.graphql_document = found  # strawberry then does not parse
            yield
            return
        yield
        if context.graphql_document is not None and not context.pre_execution_errors:
            parsed[key] = context.graphql_document
            while len(parsed) > self.MAX_ENTRIES:
                parsed.popitem(last=False)


class ValidDocumentCache(SchemaExtension):
    """Skips validating a document already found valid: a client sends the same few
    documents over and over, and validation (graphql-core walking the document with every
    rule, the depth and alias limits included) was 40 % of the CPU of a `{ __typename }`
    request. Only valid documents are remembered, per schema (its limits are its rules),
    by their text (all validation depends on), at most `MAX_ENTRIES` of at most
    `MAX_TEXT` characters. It must come after the cost limit, which refuses per caller
    before validation and is never skipped."""

    MAX_ENTRIES = 512
    MAX_TEXT = 16 * 1024

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        text = context.query
        if context.pre_execution_errors is not None or not text or len(text) > self.MAX_TEXT:
            yield
            return
        valid: OrderedDict[str, None] = context.schema.__dict__.setdefault(
            "_keiko_valid_documents", OrderedDict()
        )
        if text in valid:
            valid.move_to_end(text)
            context.pre_execution_errors = []  # valid: strawberry then skips validation
            yield
            return
        yield
        if context.pre_execution_errors == []:
            valid[text] = None
            while len(valid) > self.MAX_ENTRIES:
                valid.popitem(last=False)


class OperationMetrics(SchemaExtension):
    """Per-operation counts and latency for Prometheus."""

    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        yield
        result = self.execution_context.result
        name = self.execution_context.operation_name or "anonymous"
        try:
            kind = self.execution_context.operation_type.value
        except RuntimeError:  # the document did not parse: no operation type
            kind = "invalid"
        if kind == OperationType.SUBSCRIPTION.value:
            return  # subscriptions are long-lived; their latency means nothing
        outcome = "error" if result is None or result.errors else "ok"
        GRAPHQL_OPERATIONS.labels(name, kind, outcome).inc()
        GRAPHQL_LATENCY.labels(name, kind).observe(time.perf_counter() - started)


class RequestErrorsExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """Variable values that do not coerce to their declared types (a string for `Int!`,
    2^31, an unknown enum value, a missing input field, an impossible date) are the
    client's mistake: BAD_USER_INPUT, never a masked internal error."""

    @classmethod
    def build(cls, *args: Any, **kwargs: Any) -> Any:
        built = super().build(*args, **kwargs)
        if isinstance(built, list):
            return [tag_request_error(error) for error in built]
        return built
