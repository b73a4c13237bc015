"""The public verification routes: export documents over HTTP (what the CLI reads) and
the verification page, loaded in headless Chromium (Debian's ``chromium`` package).

The passport service behind them is real (real gRPC, migrated schema, events through the
deduplicating consumer) and verifies against a chain reader holding only what the
"chain" recorded: a batch root, never Keiko's stored one.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import tempfile
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from nacl.signing import SigningKey
from starlette.applications import Starlette

from chain.translator.authors import subject_of
from chain.translator.signing import public_key_of
from chain.verify import InMemoryChainReader, KeyInfo, verify_passport
from gateway.verify_page import verify_routes
from services.kit.auth import Principal
from services.kit.clock import FixedClock
from services.kit.db import Database
from services.kit.events import Event
from services.kit.grpc.testing import running_server, token_pair
from services.passport.domain import Disclosure, PrivacySettings
from services.passport.service import PassportService
from services.passport.servicer import PassportServicer
from services.passport.storage import entries
from services.passport.tests.conftest import consume
from services.passport.tests.factories import batch, interaction, minutes, recorded_event
from services.passport.tests.test_service import reader_factory

CHROMIUM = Path("/usr/bin/chromium")
ANA = Principal(user_id="ana", roles=frozenset({"learner"}))


@pytest.fixture
def database_schemas() -> Sequence[str]:
    return ("passport",)


@dataclass
class Site:
    url: str
    http: httpx.AsyncClient
    service: PassportService
    passport_id: str
    token: str
    statement_ids: list[str]
    reader: InMemoryChainReader


@pytest.fixture
async def site(migrated_database: Database, clock: FixedClock) -> AsyncIterator[Site]:
    service = PassportService(migrated_database, clock, share_base_url="http://gw.test")
    key = SigningKey.generate()
    items = [
        interaction(key, "ana", clock.now() + minutes(i), session_id="tut-1" if i else "")
        for i in range(4)
    ]
    anchored = batch(items[:3])
    await consume(service, *(recorded_event(i) for i in items), *anchored.events())
    # Tamper with entry 2 in Keiko's database: the page must show it failed.
    async with migrated_database.transaction() as s:
        await s.execute(
            entries.update()
            .where(entries.c.statement_id == items[1].statement_id)
            .values(statement_json=recorded_event(items[3]).payload["statement_json"])
        )
    chain = InMemoryChainReader([(anchored.batch_id, anchored.info(), anchored.tx_hash)])
    service.chain_reader = reader_factory(chain)
    public = Disclosure.build("d", [], [], True, False, True)
    await service.update_privacy(ANA, PrivacySettings(True, public, public))
    passport = await service.own_passport(ANA)
    link = await service.create_link(ANA, "page test", None, None)

    _, verifier = token_pair(clock)
    async with running_server([PassportServicer(service)], token_verifier=verifier) as channel:
        app = Starlette(routes=verify_routes(channel, chain_rpc_url="http://127.0.0.1:1/rpc"))
        async with serving(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
            yield Site(
                url,
                http,
                service,
                passport.id,
                link.token,
                [i.statement_id for i in items],
                chain,
            )


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # the test owns signals
        return None


@asynccontextmanager
async def serving(app: Starlette) -> AsyncIterator[str]:
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_config=None, access_log=False, lifespan="off"
    )
    server = _Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            await task
            raise OSError("the test server did not start")
        await asyncio.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def test_export_documents_verify_and_respect_privacy(site: Site) -> None:
    reply = await site.http.get(f"/passports/{site.passport_id}/export.json")
    assert reply.status_code == 200, reply.text
    report = verify_passport(reply.content, site.reader, require_anchored=False)
    statuses = {e.entry_id: e.status.value for e in report.entries}
    assert statuses == {
        site.statement_ids[0]: "verified",
        site.statement_ids[1]: "failed",
        site.statement_ids[2]: "verified",
        site.statement_ids[3]: "unanchored",
    }
    assert report.learner_id is None  # identity not disclosed

    shared = await site.http.get(f"/share/{site.token}/export.json")
    assert shared.status_code == 200
    assert shared.json()["passport_id"] == site.passport_id

    missing = await site.http.get("/share/not-a-token/export.json")
    assert (missing.status_code, missing.json()) == (404, {"error": "no such share link"})

    withheld = Disclosure.build("d", [], [], True, False, False)
    await site.service.update_privacy(ANA, PrivacySettings(True, withheld, withheld))
    reply = await site.http.get(f"/passports/{site.passport_id}/export.json")
    assert reply.status_code == 409 and "withholds statement content" in reply.json()["error"]
    await site.service.update_privacy(ANA, PrivacySettings(False, withheld, withheld))
    reply = await site.http.get(f"/passports/{site.passport_id}/export.json")
    assert reply.status_code == 404
    bad = await site.http.get("/verify/tx/not-hex")
    assert bad.status_code == 400


async def _dump_dom(url: str) -> str:
    with tempfile.TemporaryDirectory(prefix="keiko-chromium-") as profile:
        process = await asyncio.create_subprocess_exec(
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--dump-dom",
            url,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "HOME": profile},
        )
        out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, err.decode(errors="replace")[-2000:]
    return out.decode()


def _entries(dom: str) -> list[tuple[str, str]]:
    return re.findall(r'<li class="entry" data-status="(\w+)" data-entry-id="([^"]+)"', dom)


@pytest.mark.skipif(
    not CHROMIUM.exists() or shutil.which("chromium") is None,
    reason="needs Debian's chromium at /usr/bin/chromium (apt-get install -y chromium)",
)
async def test_page_in_headless_chromium(site: Site) -> None:
    dom = await _dump_dom(f"{site.url}/verify/{site.passport_id}")
    found = _entries(dom)
    assert [entry_id for _, entry_id in found] == site.statement_ids
    assert [status for status, _ in found] == ["verified", "failed", "verified", "pending"]
    assert "signature invalid" in dom
    assert dom.count('class="anchor"') == 3 and "/verify/tx/0x" in dom
    # The command is complete (the export names the chain): copyable as it stands.
    command = re.search(r'<pre id="verify-command">([^<]*)</pre>', dom)
    assert command and command.group(1) == (
        f"keiko passport verify {site.url}/verify/{site.passport_id}"
    )
    # Grouped by the hierarchy: course > class > tutorial session.
    assert re.search(
        r'data-level="course"><h3>Course: course-1</h3>.*data-level="class"><h4>Class: class-1'
        r'</h4>.*data-level="tutorial_session"><h5>Tutorial session: tut-1</h5>',
        dom,
        re.S,
    )
    assert "<span>4 entries</span>" in dom and "2 verified" in dom

    dom = await _dump_dom(f"{site.url}/verify/share/{site.token}")
    assert len(_entries(dom)) == 4
    assert f"{site.url}/verify/share/{site.token}" in dom  # the CLI command to run

    await site.service.revoke_link(ANA, (await site.service.list_links(ANA, False, 1, ""))[0][0].id)
    dom = await _dump_dom(f"{site.url}/verify/share/{site.token}")
    assert "Passport not available" in dom and _entries(dom) == []


async def test_the_page_and_export_name_each_entrys_author_and_key(
    migrated_database: Database, clock: FixedClock
) -> None:
    service = PassportService(migrated_database, clock, share_base_url="http://gw.test")
    ana, tom = SigningKey.generate(), SigningKey.generate()
    own = interaction(ana, "ana", clock.now(), signer="ana")
    feedback = interaction(
        tom,
        "ana",
        clock.now() + minutes(1),
        kind="feedback",
        author="tutor-tom",
        signer="tutor-tom",
    )
    anchored = batch([own, feedback])
    named = Event(
        "identity.profile_changed",
        key="tutor-tom",
        payload={"user_id": "tutor-tom", "display_name": "Tom <Tutor>"},
    )
    await consume(
        service,
        named,
        *(recorded_event(i, device=False) for i in (own, feedback)),
        *anchored.events(),
    )
    chain = InMemoryChainReader([(anchored.batch_id, anchored.info(), anchored.tx_hash)])
    chain.bind_key(public_key_of(tom), KeyInfo(subject_of("tutor-tom"), "custodial", 3))
    service.chain_reader = reader_factory(chain)
    public = Disclosure.build("d", [], [], True, False, True)
    await service.update_privacy(ANA, PrivacySettings(True, public, public))
    passport = await service.own_passport(ANA)
    _, verifier = token_pair(clock)
    async with running_server([PassportServicer(service)], token_verifier=verifier) as channel:
        app = Starlette(routes=verify_routes(channel, chain_rpc_url="http://127.0.0.1:1/rpc"))
        async with serving(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
            document = (await http.get(f"/passports/{passport.id}/export.json")).json()
            page = (await http.get(f"/verify/{passport.id}")).text
    authors = {e["entry_id"]: e["author"] for e in document["entries"]}
    assert authors[own.statement_id] == {
        "kind": "self",
        "id": "",  # identity not disclosed
        "public_key": public_key_of(ana).hex(),
    }
    assert authors[feedback.statement_id]["id"] == "tutor-tom"
    assert verify_passport(document, chain).ok
    assert '<span class="author" data-kind="SELF">self</span>' in page
    assert "attested by Tom &lt;Tutor&gt; (tutor-tom)" in page  # named, and escaped
    assert (
        "signed by the key of tutor-tom <code>"
        f"{public_key_of(tom).hex()[:16]}…</code>, registered on chain as a custodial key "
        "at block 3" in page
    )
    assert "not registered on chain" in page  # ana's key: truthfully
