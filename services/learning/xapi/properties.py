"""The properties xAPI allows on each object (Data 2.4 and IEEE 9274.1.1), and the
interaction vocabulary; anything else is refused by the validator."""

from __future__ import annotations

IFI_PROPERTIES = ("mbox", "mbox_sha1sum", "openid", "account")

INTERACTION_TYPES = (
    "true-false",
    "choice",
    "fill-in",
    "long-fill-in",
    "matching",
    "performance",
    "sequencing",
    "likert",
    "numeric",
    "other",
)
# Which interaction component lists each interactionType may carry.
INTERACTION_COMPONENTS: dict[str, tuple[str, ...]] = {
    "choice": ("choices",),
    "sequencing": ("choices",),
    "likert": ("scale",),
    "matching": ("source", "target"),
    "performance": ("steps",),
}
COMPONENT_LISTS = ("choices", "scale", "source", "target", "steps")
CONTEXT_ACTIVITY_KEYS = ("parent", "grouping", "category", "other")

STATEMENT_KEYS = (
    "id",
    "actor",
    "verb",
    "object",
    "result",
    "context",
    "timestamp",
    "stored",
    "authority",
    "version",
    "attachments",
)
SUBSTATEMENT_KEYS = (
    "objectType",
    "actor",
    "verb",
    "object",
    "result",
    "context",
    "timestamp",
    "attachments",
)
SUBSTATEMENT_FORBIDDEN = ("id", "stored", "version", "authority")
AGENT_KEYS = ("objectType", "name", *IFI_PROPERTIES)
GROUP_KEYS = ("objectType", "name", "member", *IFI_PROPERTIES)
ACTIVITY_KEYS = ("objectType", "id", "definition")
DEFINITION_KEYS = (
    "name",
    "description",
    "type",
    "moreInfo",
    "interactionType",
    "correctResponsesPattern",
    *COMPONENT_LISTS,
    "extensions",
)
RESULT_KEYS = ("score", "success", "completion", "response", "duration", "extensions")
SCORE_KEYS = ("scaled", "raw", "min", "max")
CONTEXT_KEYS_V1 = (
    "registration",
    "instructor",
    "team",
    "contextActivities",
    "revision",
    "platform",
    "language",
    "statement",
    "extensions",
)
CONTEXT_KEYS_V2 = (*CONTEXT_KEYS_V1, "contextAgents", "contextGroups")
ATTACHMENT_KEYS = (
    "usageType",
    "display",
    "description",
    "contentType",
    "length",
    "sha2",
    "fileUrl",
)
