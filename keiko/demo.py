"""``keiko demo``: the main job end to end against a running platform, in well under a
minute, as a client would do it over the gateway.

1. An admin (the operator's passkey file; on a platform with no admin yet, and with its
   database at hand, ``keiko admin bootstrap`` is run first) grants a new demo tutor the
   TUTOR role.
2. The tutor creates a course and a class in it.
3. A new demo learner signs up with a passkey (a software authenticator: the identity
   service checks its attestation and assertions exactly as a browser's). The tutor
   invites them to a tutorial session of the class and they accept: only then do they
   take part in the class (nobody is enrolled without consent). The learner opens the
   ``interactionAnchored`` subscription and records a question and an evaluation in that
   class, and an answer and an exercise in a study session of it.
4. Each is signed and anchored on Keikochain; the demo waits until all are.
5. The learner shares the passport (identity, content and scores disclosed), and the
   command line verifier checks it from the share link alone.

Every URL is printed. Exit code 0 when the verifier passes.
"""

from __future__ import annotations

import argparse
import io
import json
import secrets
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from websockets.sync.client import connect

from keiko.authenticator import SoftwareAuthenticator
from keiko.gateway_client import (
    ClientError,
    GatewayClient,
    new_authenticator,
    operations,
    request_id,
)
from keiko.operator_cli import UsageError, default_passkey_file, signed_in_client
from keiko.settings import Settings

ANCHOR_TIMEOUT_S = 120.0
READY_TIMEOUT_S = 60.0
OPERATOR_EMAIL = "keiko-operator@example.org"


def _say(text: str) -> None:
    print(text, flush=True)


def _admin(args: argparse.Namespace, settings: Settings) -> GatewayClient:
    path = args.passkey_file or default_passkey_file()
    if args.token:
        return signed_in_client(args)
    if path.exists():
        try:
            return signed_in_client(args)
        except ClientError as err:
            if err.code != "NOT_FOUND":
                raise
            # The file's account is not on this platform (a fresh data dir): keep the
            # file aside and bootstrap here, if this platform has no admin yet.
            stale = path.with_name(f"{path.name}.{int(time.time())}.unknown-here")
            path.rename(stale)
            _say(f"The operator passkey in {path} is for another platform: moved to {stale}")
    _say(f"No operator passkey at {path}: bootstrapping the first admin {OPERATOR_EMAIL}")
    from keiko.operator_cli import bootstrap

    boot = argparse.Namespace(
        gateway=args.gateway,
        passkey_file=path,
        token="",
        json=False,
        email=OPERATOR_EMAIL,
        name="Keiko operator",
        existing_account=False,
    )
    bootstrap(boot, settings)
    return signed_in_client(args)


def _person(
    gateway: str, rp_id: str, role: str, name: str
) -> tuple[GatewayClient, str, SoftwareAuthenticator]:
    """A new account signed up (and in) with a passkey this run holds in memory."""
    email = f"demo-{role}-{secrets.token_hex(4)}@example.org"
    client = GatewayClient(gateway)
    authenticator = new_authenticator(gateway, rp_id)
    client.sign_up(email, name, authenticator)
    return client, email, authenticator


class AnchorWatch:
    """The learner's ``interactionAnchored`` subscription (graphql-transport-ws)."""

    def __init__(self, gateway: str, token: str) -> None:
        url = gateway.replace("http://", "ws://").replace("https://", "wss://") + "/graphql"
        self.ws = connect(url, subprotocols=["graphql-transport-ws"])  # type: ignore[list-item]
        self.ws.send(
            json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
        )
        ack = json.loads(self.ws.recv(timeout=30))
        if ack.get("type") != "connection_ack":
            raise ClientError(f"the subscription was refused: {ack}")
        self.ws.send(
            json.dumps(
                {
                    "id": "anchored",
                    "type": "subscribe",
                    "payload": {
                        "query": operations()["InteractionAnchored"],
                        "operationName": "InteractionAnchored",
                    },
                }
            )
        )

    def wait(self, ids: set[str], timeout: float) -> dict[str, dict[str, Any]]:
        deadline = time.monotonic() + timeout
        anchored: dict[str, dict[str, Any]] = {}
        while not ids <= set(anchored):
            left = deadline - time.monotonic()
            if left <= 0:
                raise ClientError(f"only {len(anchored)} of {len(ids)} anchored in {timeout} s")
            message = json.loads(self.ws.recv(timeout=left))
            if message["type"] == "ping":
                self.ws.send(json.dumps({"type": "pong"}))
            elif message["type"] == "next":
                if message["payload"].get("errors"):
                    raise ClientError(f"subscription error: {message['payload']['errors']}")
                entry = message["payload"]["data"]["interactionAnchored"]
                anchored[entry["statementId"]] = entry
                _say(f"  anchored: {entry['summary']}  (block {entry['anchor']['blockNumber']})")
            elif message["type"] in ("error", "complete"):
                raise ClientError(f"the subscription ended: {message}")
        return anchored

    def close(self) -> None:
        self.ws.close()


def _record(learner: GatewayClient, course_id: str, class_id: str) -> list[str]:
    """In the class: a question and an evaluation; in a study session of the class (the
    learner's own): the answer and an exercise."""
    study = learner.call(
        "StartStudySession", classId=class_id, topic="Rank", requestId=request_id()
    )["startStudySession"]
    in_class = {"courseId": course_id, "classId": class_id}
    studying = {**in_class, "studySessionId": study["id"]}

    def record(place: dict[str, str], **fields: Any) -> str:
        made = learner.call("RecordInteraction", input={**place, **fields}, requestId=request_id())[
            "recordInteraction"
        ]
        _say(f"  recorded {made['interactionType'].lower():<10} {made['title'] or made['id']}")
        return str(made["id"])

    question = record(
        in_class,
        interactionType="QUESTION",
        title="Question 3: the rank of a matrix",
        content="What is the rank of the 3x3 identity matrix?",
    )
    answer = record(
        studying,
        interactionType="ANSWER",
        title="Question 3: the rank of a matrix",
        response="3: its three columns are linearly independent",
        relatedInteractionId=question,
        score={"scaled": 1.0},
        success=True,
    )
    exercise = record(
        studying,
        interactionType="EXERCISE",
        title="Exercise 2.1: Gaussian elimination",
        completion=True,
        success=True,
        score={"scaled": 0.8},
        durationSeconds=900,
    )
    evaluation = record(
        in_class,
        interactionType="EVALUATION",
        title="Quiz: matrices",
        score={"raw": 9, "min": 0, "max": 10, "scaled": 0.9},
        success=True,
    )
    return [question, answer, exercise, evaluation]


def run(args: argparse.Namespace, settings: Settings) -> int:
    started = time.monotonic()
    gateway = args.gateway.rstrip("/")
    rp_id = settings.webauthn_rp_id
    with GatewayClient(gateway) as probe:  # ready (bounded wait: it may just have started)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while (ready := probe.get("/readyz")).status_code != 200:
            if time.monotonic() > deadline:
                raise ClientError(f"{gateway}/readyz answered {ready.status_code}: {ready.text}")
            time.sleep(0.5)

    _say("1. An admin makes a demo tutor")
    with _admin(args, settings) as admin:
        tutor, tutor_email, tutor_key = _person(gateway, rp_id, "tutor", "Demo Tutor")
        tutor_id = admin.call("Users", query=tutor_email)["users"]["nodes"][0]["id"]
        admin.call("SetUserRoles", userId=tutor_id, roles=["LEARNER", "TUTOR"])
    # Roles travel in tokens: log in again to carry TUTOR.
    tutor.log_in(tutor_email, tutor_key)
    _say(f"  tutor {tutor_email}")

    _say("2. The tutor creates a course and a class")
    course = tutor.call(
        "CreateCourse",
        title="Linear Algebra (demo)",
        description="Matrices, rank and elimination",
        requestId=request_id(),
    )["createCourse"]
    klass = tutor.call(
        "CreateClass", title="Class 2: Matrices", courseId=course["id"], requestId=request_id()
    )["createClass"]
    _say(f"  course {course['title']} / {klass['title']}")

    _say("3. A learner signs up with a passkey; the tutor invites them, they accept")
    learner, learner_email, _ = _person(gateway, rp_id, "learner", "Ana Demo")
    _say(f"  learner {learner_email}")
    learner_id = learner.call("Me")["me"]["id"]
    tutorial = tutor.call(
        "CreateTutorialSession",
        input={
            "sessionType": "HUMAN",
            "studentIds": [learner_id],
            "classId": klass["id"],
            "topic": "Rank",
            "requestId": request_id(),
        },
    )["createTutorialSession"]
    tutor.close()
    # Consent: the learner takes part in the class only once they accept.
    invitation = next(
        i
        for i in learner.call("PendingInvitations")["invitations"]
        if i["subjectId"] == tutorial["id"]
    )
    learner.call("AcceptInvitation", id=invitation["id"])
    _say(f"  accepted the tutorial session {tutorial['id']}")
    assert learner.token is not None
    watch = AnchorWatch(gateway, learner.token)
    try:
        ids = _record(learner, course["id"], klass["id"])
        _say("4. Waiting for Keikochain (live, over the interactionAnchored subscription)")
        anchored = watch.wait(set(ids), ANCHOR_TIMEOUT_S)
    finally:
        watch.close()

    _say("5. Sharing the passport and verifying it from the link alone")
    # Share links may reveal the learner's name: widen their bound, then share within it.
    learner.call(
        "UpdatePrivacySettings",
        input={
            "public": False,
            "publicDisclosure": {},
            "shareLinkDisclosure": {"showIdentity": True},
        },
    )
    share = learner.call(
        "CreateShareLink",
        input={
            "label": "keiko demo",
            "scope": {"showIdentity": True, "showContent": True, "showScores": True},
            "requestId": request_id(),
        },
    )["createShareLink"]
    learner.close()
    from chain.verify.cli import main as verify_main

    report = io.StringIO()
    code = verify_main([share["url"]], out=report)
    _say(report.getvalue().rstrip())

    token = share["token"]
    first_tx = anchored[ids[0]]["anchor"]["txHash"]
    urls = {
        "web app": f"{gateway}/app",
        "verification page (share link)": share["url"],
        "export (what the verifier reads)": f"{gateway}/share/{token}/export.json",
        "anchor transaction of the first entry": f"{gateway}/verify/tx/{first_tx}",
        "GraphiQL": f"{gateway}/graphql",
    }
    _say("")
    _say(f"Demo learner {learner_email} (a software passkey held by this run only)")
    for label, url in urls.items():
        _say(f"  {label:<40} {url}")
    _say(f"Verify it yourself:  keiko passport verify {share['url']}")
    _say(f"Done in {time.monotonic() - started:.1f} s: verifier exit code {code}.")
    if args.json_file:
        args.json_file.write_text(
            json.dumps(
                {
                    "learner_email": learner_email,
                    "course_id": course["id"],
                    "class_id": klass["id"],
                    "interaction_ids": ids,
                    "share_url": share["url"],
                    "urls": urls,
                    "verifier_exit_code": code,
                },
                indent=2,
            )
        )
    return code


def main(argv: Sequence[str]) -> int:
    settings = Settings()
    parser = argparse.ArgumentParser(
        prog="keiko demo",
        description="Run the main job against a running platform: passkey sign-up, a "
        "course with a class, interactions anchored live, a share link, the verifier.",
    )
    parser.add_argument("--gateway", default=settings.public_gateway_url)
    parser.add_argument(
        "--passkey-file",
        type=Path,
        default=None,
        help="the operator's passkey file (default: KEIKO_OPERATOR_PASSKEY or "
        "~/.config/keiko/operator-passkey.json; made by bootstrap when no admin exists)",
    )
    parser.add_argument("--token", default="", help="an admin's access token instead")
    parser.add_argument("--json-file", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(list(argv))
    try:
        return run(args, settings)
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except (ClientError, TimeoutError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
