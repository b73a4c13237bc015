"""A passport's version moves with every change its reader sees, and with nothing else:
what lets the gateway keep a rendered passport until it changes."""

from __future__ import annotations

from nacl.signing import SigningKey

from services.kit.events import Event
from services.passport.domain import PrivacySettings
from services.passport.service import PassportService
from services.passport.tests.conftest import ANA, BEN, consume
from services.passport.tests.factories import batch, interaction, recorded_event


def renamed(user_id: str, name: str) -> Event:
    return Event(
        "identity.profile_changed", key=user_id, payload={"user_id": user_id, "display_name": name}
    )


async def version(service: PassportService, owner: str = "ana") -> int:
    viewer = ANA if owner == "ana" else BEN
    return (await service.access(viewer)).passport.version


async def test_every_change_a_reader_sees_moves_the_version(
    service: PassportService, ana_key: SigningKey
) -> None:
    now = service.clock.now()
    own = interaction(ana_key, "ana", now, signer="ana")
    feedback = interaction(SigningKey.generate(), "ana", now, author="tom", signer="tom")
    seen = [await version(service)]

    async def moved() -> None:
        seen.append(await version(service))
        assert seen[-1] > seen[-2], seen

    await consume(service, recorded_event(own))
    await moved()
    await consume(service, recorded_event(feedback, device=False))
    await moved()
    await consume(service, *batch([own]).events())  # anchored
    await moved()
    await consume(service, renamed("tom", "Tom Tutor"))  # an author's name
    await moved()
    await consume(service, renamed("ana", "Ana"))  # the owner's name
    await moved()
    await service.update_profile(ANA, {"learning_style": "visual"})
    await moved()
    await service.update_privacy(ANA, PrivacySettings(public=True))
    await moved()

    # Events replayed (deduplicated) and others' changes leave it where it is.
    await consume(service, recorded_event(own), renamed("someone-else", "Sam"))
    await service.update_profile(BEN, {"learning_style": "visual"})
    assert await version(service) == seen[-1]
    # Ben's passport does not move with the name of an author of Ana's entries.
    ben_before = await version(service, "ben")
    await consume(service, renamed("tom", "Tom T."))
    assert await version(service, "ben") == ben_before
    assert await version(service) > seen[-1]
