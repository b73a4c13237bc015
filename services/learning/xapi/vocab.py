"""Well-known xAPI vocabulary IRIs (ADL verbs and activity types, cmi5) used by Keiko."""

from __future__ import annotations

ADL_VERBS = "http://adlnet.gov/expapi/verbs/"
ADL_ACTIVITY_TYPES = "http://adlnet.gov/expapi/activities/"

# ADL verbs (http://adlnet.gov/expapi/verbs/...)
VERB_ANSWERED = ADL_VERBS + "answered"
VERB_ASKED = ADL_VERBS + "asked"
VERB_ATTEMPTED = ADL_VERBS + "attempted"
VERB_ATTENDED = ADL_VERBS + "attended"
VERB_COMMENTED = ADL_VERBS + "commented"
VERB_COMPLETED = ADL_VERBS + "completed"
VERB_EXPERIENCED = ADL_VERBS + "experienced"
VERB_FAILED = ADL_VERBS + "failed"
VERB_PASSED = ADL_VERBS + "passed"
VERB_REGISTERED = ADL_VERBS + "registered"
VERB_RESPONDED = ADL_VERBS + "responded"
VERB_SCORED = ADL_VERBS + "scored"
VERB_VOIDED = ADL_VERBS + "voided"

# ADL activity types (http://adlnet.gov/expapi/activities/...)
TYPE_ASSESSMENT = ADL_ACTIVITY_TYPES + "assessment"
TYPE_CMI_INTERACTION = ADL_ACTIVITY_TYPES + "cmi.interaction"
TYPE_COURSE = ADL_ACTIVITY_TYPES + "course"
TYPE_FILE = ADL_ACTIVITY_TYPES + "file"
TYPE_LESSON = ADL_ACTIVITY_TYPES + "lesson"
TYPE_LINK = ADL_ACTIVITY_TYPES + "link"
TYPE_MEDIA = ADL_ACTIVITY_TYPES + "media"
TYPE_MEETING = ADL_ACTIVITY_TYPES + "meeting"
TYPE_MODULE = ADL_ACTIVITY_TYPES + "module"
TYPE_PERFORMANCE = ADL_ACTIVITY_TYPES + "performance"
TYPE_QUESTION = ADL_ACTIVITY_TYPES + "question"

# Attachment usage type of a JWS signature (xAPI "Signed Statements").
ATTACHMENT_SIGNATURE = "http://adlnet.gov/expapi/attachments/signature"

# Keiko's own namespace: https://keiko.network/xapi/... (see services/learning/hierarchy/domain.py)
KEIKO_XAPI = "https://keiko.network/xapi/"
KEIKO_ACTIVITIES = KEIKO_XAPI + "activities/"
KEIKO_ACTIVITY_TYPES = KEIKO_XAPI + "activity-types/"
KEIKO_EXTENSIONS = KEIKO_XAPI + "extensions/"
KEIKO_PROFILE = KEIKO_XAPI + "profile"

TYPE_KEIKO_TUTORIAL_SESSION = KEIKO_ACTIVITY_TYPES + "tutorial-session"
TYPE_KEIKO_STUDY_SESSION = KEIKO_ACTIVITY_TYPES + "study-session"
TYPE_KEIKO_DISCUSSION = KEIKO_ACTIVITY_TYPES + "discussion"
TYPE_KEIKO_FEEDBACK = KEIKO_ACTIVITY_TYPES + "feedback"

EXT_TUTOR_KIND = KEIKO_EXTENSIONS + "tutor-kind"
EXT_INTERACTION_KIND = KEIKO_EXTENSIONS + "interaction-kind"
EXT_IMPORT = KEIKO_EXTENSIONS + "import"
EXT_SESSION_ROLE = KEIKO_EXTENSIONS + "session-role"
