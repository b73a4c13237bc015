# ruff: noqa: E501
"""Realistic xAPI statements (after the specification's examples) shared by the tests."""

from __future__ import annotations

import copy
from typing import Any

MISSING = object()

SIMPLE: dict[str, Any] = {
    "id": "fd41c918-b88b-4b20-a0a5-a4c32391aaa0",
    "timestamp": "2015-11-18T12:17:00+00:00",
    "actor": {
        "objectType": "Agent",
        "name": "Project Tin Can API",
        "mbox": "mailto:user@example.com",
    },
    "verb": {
        "id": "http://example.com/xapi/verbs#sent-a-statement",
        "display": {"en-US": "sent"},
    },
    "object": {
        "id": "http://example.com/xapi/activity/simplestatement",
        "definition": {
            "name": {"en-US": "simple statement"},
            "description": {"en-US": "A simple Experience API statement."},
        },
    },
}

LONG: dict[str, Any] = {
    "id": "6690e6c9-3ef0-4ed3-8b37-7f3964730bee",
    "actor": {
        "name": "Team PB",
        "mbox": "mailto:teampb@example.com",
        "member": [
            {
                "name": "Andrew Downes",
                "account": {"homePage": "http://www.example.com", "name": "13936749"},
                "objectType": "Agent",
            },
            {
                "name": "Toby Nichols",
                "openid": "http://toby.openid.example.org/",
                "objectType": "Agent",
            },
            {
                "name": "Ena Hills",
                "mbox_sha1sum": "ebd31e95054c018b10727ccffd2ef2ec3a016ee9",
                "objectType": "Agent",
            },
        ],
        "objectType": "Group",
    },
    "verb": {
        "id": "http://adlnet.gov/expapi/verbs/attended",
        "display": {"en-GB": "attended", "en-US": "attended"},
    },
    "result": {
        "extensions": {
            "http://example.com/profiles/meetings/resultextensions/minuteslocation": "X:\\meetings\\minutes\\examplemeeting.one"
        },
        "success": True,
        "completion": True,
        "response": "We agreed on some example actions.",
        "duration": "PT1H0M0S",
    },
    "context": {
        "registration": "ec531277-b57b-4c15-8d91-d292c5b2b8f7",
        "contextActivities": {
            "parent": [
                {"id": "http://www.example.com/meetings/series/267", "objectType": "Activity"}
            ],
            "category": [
                {
                    "id": "http://www.example.com/meetings/categories/teammeeting",
                    "objectType": "Activity",
                    "definition": {
                        "name": {"en": "team meeting"},
                        "description": {
                            "en": "A category of meeting used for regular team meetings."
                        },
                        "type": "http://example.com/expapi/activities/meetingcategory",
                    },
                }
            ],
            "other": [
                {
                    "id": "http://www.example.com/meetings/occurances/34257",
                    "objectType": "Activity",
                },
                {
                    "id": "http://www.example.com/meetings/occurances/3425567",
                    "objectType": "Activity",
                },
            ],
        },
        "instructor": {
            "name": "Andrew Downes",
            "account": {"homePage": "http://www.example.com", "name": "13936749"},
            "objectType": "Agent",
        },
        "team": {"name": "Team PB", "mbox": "mailto:teampb@example.com", "objectType": "Group"},
        "platform": "Example virtual meeting software",
        "language": "tlh",
        "statement": {"objectType": "StatementRef", "id": "6690e6c9-3ef0-4ed3-8b37-7f3964730bee"},
    },
    "timestamp": "2013-05-18T05:32:34.804+00:00",
    "stored": "2013-05-18T05:32:34.804+00:00",
    "authority": {
        "account": {"homePage": "http://cloud.scorm.com/", "name": "anonymous"},
        "objectType": "Agent",
    },
    "version": "1.0.0",
    "object": {
        "id": "http://www.example.com/meetings/occurances/34534",
        "definition": {
            "extensions": {
                "http://example.com/profiles/meetings/activitydefinitionextensions/room": {
                    "name": "Kilby",
                    "id": "http://example.com/rooms/342",
                }
            },
            "name": {"en-GB": "example meeting", "en-US": "example meeting"},
            "description": {
                "en-GB": "An example meeting that happened on a specific occasion with certain people present.",
                "en-US": "An example meeting that happened on a specific occasion with certain people present.",
            },
            "type": "http://adlnet.gov/expapi/activities/meeting",
            "moreInfo": "http://virtualmeeting.example.com/345256",
        },
        "objectType": "Activity",
    },
}

CHOICE_ANSWER: dict[str, Any] = {
    "actor": {"account": {"homePage": "https://keiko.network", "name": "ana"}},
    "verb": {"id": "http://adlnet.gov/expapi/verbs/answered", "display": {"es": "respondió"}},
    "object": {
        "id": "https://keiko.network/xapi/activities/question/q3",
        "definition": {
            "type": "http://adlnet.gov/expapi/activities/cmi.interaction",
            "interactionType": "choice",
            "correctResponsesPattern": ["golf[,]tetris"],
            "choices": [
                {"id": "golf", "description": {"en-US": "Golf Example"}},
                {"id": "facebook", "description": {"en-US": "Facebook App"}},
                {"id": "tetris", "description": {"en-US": "Tetris Example"}},
            ],
        },
    },
    "result": {
        "score": {"scaled": 0.8, "raw": 8, "min": 0, "max": 10},
        "success": True,
        "response": "golf[,]tetris",
    },
    "context": {
        "contextActivities": {
            "parent": {"id": "https://keiko.network/xapi/activities/class/algebra-3"}
        }
    },
    "timestamp": "2026-01-31T12:00:00.000Z",
}

SUBSTATEMENT: dict[str, Any] = {
    "actor": {"objectType": "Agent", "mbox": "mailto:test@example.com"},
    "verb": {"id": "http://example.com/planned", "display": {"en-US": "planned"}},
    "object": {
        "objectType": "SubStatement",
        "actor": {"objectType": "Agent", "mbox": "mailto:test@example.com"},
        "verb": {"id": "http://example.com/visited", "display": {"en-US": "will visit"}},
        "object": {
            "id": "http://example.com/website",
            "definition": {"name": {"en-US": "Some Awesome Website"}},
        },
        "timestamp": "2026-02-01T09:00:00Z",
    },
}

VOIDING: dict[str, Any] = {
    "actor": {
        "objectType": "Agent",
        "name": "Example Admin",
        "mbox": "mailto:admin@example.adlnet.gov",
    },
    "verb": {"id": "http://adlnet.gov/expapi/verbs/voided", "display": {"en-US": "voided"}},
    "object": {"objectType": "StatementRef", "id": "E05AA883-ACAF-40AD-BF54-02C8CE485FB0"},
}

ATTACHMENT: dict[str, Any] = {
    "actor": {"mbox": "mailto:sample.agent@example.com"},
    "verb": {"id": "http://adlnet.gov/expapi/verbs/completed"},
    "object": {"id": "http://www.example.com/activities/essay"},
    "attachments": [
        {
            "usageType": "http://adlnet.gov/expapi/attachments/signature",
            "display": {"en-US": "Signature"},
            "description": {"en-US": "A test signature"},
            "contentType": "application/octet-stream",
            "length": 4235,
            "sha2": "672fa5fa658017f1b72d65036f13379c6ab05d4ab3b6664908d8acf0b6a0c634",
        },
        {
            "usageType": "http://id.tincanapi.com/attachment/supporting_media",
            "display": {"en": "Essay"},
            "contentType": "text/plain; charset=utf-8",
            "length": 12,
            "sha2": "a" * 128,
            "fileUrl": "https://files.example.com/essay.txt",
        },
    ],
}

V2_CONTEXT_AGENTS: dict[str, Any] = {
    "id": "8f0b2a64-3c1e-4d2a-9b7e-2f1c0d9e8a71",
    "actor": {
        "objectType": "Agent",
        "account": {"homePage": "https://keiko.network", "name": "ana"},
    },
    "verb": {"id": "http://adlnet.gov/expapi/verbs/completed", "display": {"en-US": "completed"}},
    "object": {
        "id": "https://keiko.network/xapi/activities/exercise/ex-7",
        "definition": {"type": "http://adlnet.gov/expapi/activities/performance"},
    },
    "result": {"completion": True, "duration": "PT12M30.5S", "score": {"scaled": -0.25}},
    "context": {
        "contextAgents": [
            {
                "objectType": "contextAgent",
                "agent": {
                    "account": {"homePage": "https://keiko.network/ai-tutors", "name": "tutor-ai-1"}
                },
                "relevantTypes": ["https://keiko.network/xapi/activity-types/tutorial-session"],
            }
        ],
        "contextGroups": [
            {
                "objectType": "contextGroup",
                "group": {
                    "objectType": "Group",
                    "member": [
                        {"mbox": "mailto:bo@example.org"},
                        {"mbox": "mailto:cy@example.org"},
                    ],
                },
            }
        ],
        "language": "es-419",
    },
    "timestamp": "2026-01-31T12:00:00.123456789+05:30",
    "version": "2.0.0",
}


def clone(statement: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(statement)


def setting(statement: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of `statement` with the dotted `path` (`a.b[0].c`) set to `value` (or removed
    when `value is MISSING`)."""
    out = clone(statement)
    parts: list[str | int] = []
    for token in path.split("."):
        name, _, rest = token.partition("[")
        if name:
            parts.append(name)
        while rest:
            index, _, rest = rest.partition("]")
            parts.append(int(index))
            rest = rest.lstrip("[")
    target: Any = out
    for part in parts[:-1]:
        target = target[part]
    last = parts[-1]
    if value is MISSING:
        del target[last]
    else:
        target[last] = value
    return out
