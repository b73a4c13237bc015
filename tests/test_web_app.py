"""The web client at /app in a real browser, on the whole platform: Debian's headless
Chromium driven by Playwright, with a virtual passkey authenticator installed through the
Chrome DevTools Protocol's WebAuthn domain (the browser runs the real ceremony:
navigator.credentials.create / get, attestation and assertion checked by identity).

Passkey sign-up -> record an interaction -> it turns anchored live (graphql-transport-ws)
-> the timeline shows it -> share link -> the verification page shows it VERIFIED, and is
readable at 390 px. Then a fresh tab logs in with the same passkey (discoverable, no
email). GraphiQL at /graphql loads with no request leaving the machine.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from keiko import registry
from keiko.platform import RunningPlatform, running_platform
from tests.e2e_support import e2e_settings, engine_env, migrate_all

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 90_000

pytestmark = [
    pytest.mark.skipif(
        not CHROMIUM.exists() or shutil.which("chromium") is None,
        reason="needs Debian's chromium at /usr/bin/chromium (apt-get install -y chromium)",
    ),
    pytest.mark.timeout(600),
]


@pytest.fixture
async def platform(
    tmp_path: Path, database_url: str, event_bus_url: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[RunningPlatform]:
    engine_env(monkeypatch, database_url, batch_max_leaves="25", batch_max_wait_ms="300")
    settings = e2e_settings(tmp_path / "data", database_url, event_bus_url)
    # The browser is at http://localhost:<port>: that origin runs the ceremonies.
    settings = settings.model_copy(
        update={"webauthn_origins_setting": [f"http://localhost:{settings.http_port}"]}
    )
    await migrate_all(database_url)
    async with running_platform(settings, registry.resolve(None)) as running:
        yield running


async def test_passkey_record_anchor_share_verify_in_chromium(platform: RunningPlatform) -> None:
    from playwright.async_api import async_playwright

    base = f"http://localhost:{platform.http_port}"
    with tempfile.TemporaryDirectory(prefix="keiko-chromium-") as profile:
        async with async_playwright() as pw:
            context = await pw.chromium.launch_persistent_context(
                profile,
                executable_path=str(CHROMIUM),
                headless=True,
                args=CHROMIUM_FLAGS,
                viewport={"width": 390, "height": 844},
            )
            try:
                await _main_job(context, base)
            finally:
                await context.close()


async def _virtual_authenticator(context, page):  # type: ignore[no-untyped-def]
    """A CTAP2 platform authenticator holding discoverable credentials, user verified."""
    cdp = await context.new_cdp_session(page)
    await cdp.send("WebAuthn.enable", {"enableUI": False})
    added = await cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    return cdp, added["authenticatorId"]


async def _main_job(context, base: str) -> None:  # type: ignore[no-untyped-def]
    external: list[str] = []
    context.on(
        "request",
        lambda request: (
            external.append(request.url)
            if not request.url.startswith((base, "data:", "ws://localhost"))
            else None
        ),
    )
    page = await context.new_page()
    cdp, authenticator = await _virtual_authenticator(context, page)

    # Sign up with a passkey.
    await page.goto(f"{base}/app")
    await page.fill("#signup-email", "ana@example.org")
    await page.fill("#signup-name", "Ana Learner")
    await page.click("#signup")
    await page.wait_for_selector("#record:not([hidden])", timeout=WAIT_MS)
    assert "Ana Learner" in await page.inner_text("#whoami")
    found = await cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})
    credentials = found["credentials"]
    assert len(credentials) == 1 and credentials[0]["isResidentCredential"]

    # Record; the entry turns anchored live over the subscription.
    await page.wait_for_selector("body[data-live=true]", timeout=WAIT_MS)
    await page.select_option("#record-type", "QUESTION")
    await page.fill("#record-title", "Linear algebra, question 3")
    await page.fill("#record-content", "What is the rank of the identity matrix of size 3?")
    await page.fill("#record-response", "3")
    await page.fill("#record-score", "0.8")
    await page.click("#record-submit")
    await page.wait_for_selector("#recorded li.entry", timeout=WAIT_MS)
    await page.wait_for_selector("#recorded li.entry[data-status=ANCHORED]", timeout=WAIT_MS)
    assert "block" in await page.inner_text("#recorded li.entry")

    # The timeline shows it, titled.
    await page.wait_for_function(
        "document.querySelector('#timeline').textContent.includes('Linear algebra, question 3')",
        timeout=WAIT_MS,
    )

    # Share, open the verification page: VERIFIED.
    await page.click("#share-create")
    await page.wait_for_selector("#share-result:not([hidden])", timeout=WAIT_MS)
    link = await page.get_attribute("#open-verification", "href")
    assert link and link.startswith(f"{base}/verify/share/")
    await page.click("#open-verification")
    await page.wait_for_url(link, timeout=WAIT_MS)
    entries = page.locator("li.entry")
    assert await entries.count() == 1
    assert await entries.first.get_attribute("data-status") == "verified"
    assert (await page.inner_text("li.entry .status")).strip() == "VERIFIED"
    assert "Linear algebra, question 3" in await page.inner_text("li.entry .summary")
    command = await page.inner_text("#verify-command")
    assert command == f"keiko passport verify {link}"
    # Readable at 390 px: nothing wider than the screen.
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page is {width} px wide at a 390 px viewport"

    # A new tab without the session logs in with the same passkey, no email typed.
    await page.evaluate("sessionStorage.clear()")
    await page.goto(f"{base}/app")
    await page.click("#login")
    await page.wait_for_selector("#record:not([hidden])", timeout=WAIT_MS)
    assert "Ana Learner" in await page.inner_text("#whoami")

    # GraphiQL loads from Keiko alone.
    await page.goto(f"{base}/graphql")
    await page.wait_for_selector(".graphiql-container", timeout=WAIT_MS)
    assert external == [], f"requests left the machine: {external}"
