"""Spaces over real gRPC: listing, editing, availability, verification, search, with the
exact error every bad input and every unauthorized write gets."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import grpc
import pytest
from grpclib.const import Cardinality

from services.api.keiko.common import v1 as common_pb
from services.api.keiko.marketplace import v1 as pb
from services.kit.grpc.adapter import describe
from services.marketplace.servicer import MarketplaceServicer
from services.marketplace.tests.conftest import (
    ALL_WEEK,
    Harness,
    at,
    eur,
    expect_code,
    expect_invalid,
    outbox_events,
)

DENIED = grpc.StatusCode.PERMISSION_DENIED
PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION


def slot(day: int, start: str, end: str) -> pb.WeeklySlot:
    return pb.WeeklySlot(weekday=pb.Weekday(day), start_time=start, end_time=end)


# -- create -----------------------------------------------------------------------------------


async def test_create_space_returns_the_listing(harness: Harness) -> None:
    space = await harness.create_space(
        geo=pb.GeoPoint(latitude=40.4168, longitude=-3.7038),
        amenities=[pb.Amenity.WIFI, pb.Amenity.WHITEBOARD, pb.Amenity.WIFI],
        accessibility_features=[
            pb.AccessibilityFeature(
                feature_type=pb.AccessibilityType.from_string("WHEELCHAIR_ACCESS"),
                description="ramp at side",
            )
        ],
        time_zone="Europe/Madrid",
    )
    assert space.owner_id == "owner-1"
    assert space.time_zone == "Europe/Madrid"
    assert space.amenities == [pb.Amenity.WIFI, pb.Amenity.WHITEBOARD]
    assert space.accessibility_features[0].description == "ramp at side"
    assert (space.hourly_rate.currency_code, space.hourly_rate.amount_minor) == ("EUR", 2000)
    assert space.verification_status == pb.VerificationStatus.UNVERIFIED
    assert not space.verified and not space.child_safe
    assert space.rating_summary.rating_count == 0
    assert space.geo.latitude == pytest.approx(40.4168)
    fetched = await harness.anonymous().get_space(pb.GetSpaceRequest(space_id=space.id))
    assert fetched.space.to_dict() == space.to_dict()


async def test_only_space_owners_and_admins_create_spaces(harness: Harness) -> None:
    request = pb.CreateSpaceRequest(
        name="x", address="y", time_zone="UTC", capacity=1, hourly_rate=eur(1)
    )
    await expect_code(harness.learner().create_space(request), DENIED, "requires role space_owner")
    await expect_code(harness.tutor().create_space(request), DENIED, "requires role space_owner")
    await expect_code(
        harness.anonymous().create_space(request),
        grpc.StatusCode.UNAUTHENTICATED,
        "missing authorization metadata",
    )
    made = await harness.admin().create_space(request)
    assert made.space.owner_id == "admin-1"


BAD_SPACES: list[tuple[dict[str, Any], str, str]] = [
    ({"name": "  "}, "space.name", "is required"),
    ({"name": "x" * 201}, "space.name", "must be at most 200 characters"),
    ({"address": ""}, "space.address", "is required"),
    ({"capacity": 0}, "space.capacity", "must be between 1 and 10000"),
    ({"capacity": 10_001}, "space.capacity", "must be between 1 and 10000"),
    ({"time_zone": ""}, "space.time_zone", "is required"),
    (
        {"time_zone": "Mars/Olympus_Mons"},
        "space.time_zone",
        "must be an IANA time zone name, e.g. Europe/Madrid",
    ),
    (
        {"hourly_rate": common_pb.Money(currency_code="eur", amount_minor=100)},
        "space.hourly_rate.currency_code",
        "must be a 3-letter ISO 4217 code, e.g. EUR",
    ),
    ({"hourly_rate": eur(-1)}, "space.hourly_rate.amount_minor", "must not be negative"),
    ({"amenities": [pb.Amenity.UNSPECIFIED]}, "space.amenities[0]", "must be a known amenity"),
    (
        {"geo": pb.GeoPoint(latitude=91, longitude=0)},
        "space.geo.latitude",
        "must be between -90 and 90",
    ),
    (
        {
            "accessibility_features": [
                pb.AccessibilityFeature(feature_type=pb.AccessibilityType.from_string("ELEVATOR")),
                pb.AccessibilityFeature(feature_type=pb.AccessibilityType.from_string("ELEVATOR")),
            ]
        },
        "space.accessibility_features[1].feature_type",
        "is listed twice",
    ),
    (
        {"availability": pb.Availability(weekly=[slot(1, "10:00", "09:00")])},
        "space.availability.weekly[0].end_time",
        "must be after start_time",
    ),
    (
        {"availability": pb.Availability(weekly=[slot(1, "9:00", "12:00")])},
        "space.availability.weekly[0].start_time",
        'must be a local time "HH:MM" (24 h)',
    ),
    (
        {"availability": pb.Availability(weekly=[slot(0, "09:00", "12:00")])},
        "space.availability.weekly[0].weekday",
        "is required (MONDAY..SUNDAY)",
    ),
    (
        {
            "availability": pb.Availability(
                weekly=[slot(2, "09:00", "12:00"), slot(2, "11:00", "13:00")]
            )
        },
        "space.availability.weekly[1]",
        "overlaps weekly[0]",
    ),
    (
        {
            "availability": pb.Availability(
                exceptions=[
                    pb.AvailabilityException(
                        kind=pb.AvailabilityExceptionKind.from_string("CLOSED"),
                        start_date="2026-02-30",
                        end_date="2026-03-01",
                    )
                ]
            )
        },
        "space.availability.exceptions[0].start_date",
        'must be a local date "YYYY-MM-DD"',
    ),
    (
        {
            "availability": pb.Availability(
                exceptions=[
                    pb.AvailabilityException(
                        kind=pb.AvailabilityExceptionKind.from_string("EXTRA"),
                        start_date="2026-02-01",
                        end_date="2026-02-01",
                    )
                ]
            )
        },
        "space.availability.exceptions[0].start_time",
        "is required",
    ),
    ({"request_id": "r" * 101}, "request_id", "must be at most 100 characters"),
]


@pytest.mark.parametrize(("fields", "field_path", "reason"), BAD_SPACES)
async def test_create_space_rejects_bad_input(
    harness: Harness, fields: dict[str, Any], field_path: str, reason: str
) -> None:
    base: dict[str, Any] = {
        "name": "Sala",
        "address": "Calle 1",
        "time_zone": "UTC",
        "capacity": 4,
        "hourly_rate": eur(1000),
    }
    await expect_invalid(
        harness.owner().create_space(pb.CreateSpaceRequest(**{**base, **fields})),
        field_path,
        reason,
    )


async def test_create_space_is_idempotent_by_request_id(harness: Harness) -> None:
    first = await harness.create_space(request_id="listing-1")
    again = await harness.create_space(request_id="listing-1")
    other = await harness.create_space(request_id="listing-2")
    assert again.id == first.id
    assert other.id != first.id


# -- update -----------------------------------------------------------------------------------


async def test_nobody_edits_another_owners_space(harness: Harness) -> None:
    space = await harness.create_space("owner-1")
    request = pb.UpdateSpaceRequest(space_id=space.id, name="Mine now")
    for caller in (harness.owner("owner-2"), harness.learner(), harness.tutor()):
        await expect_code(caller.update_space(request), DENIED, "only the space owner may edit it")
    await expect_code(
        harness.owner("owner-2").set_availability(
            pb.SetAvailabilityRequest(space_id=space.id, availability=ALL_WEEK)
        ),
        DENIED,
        "only the space owner may set its availability",
    )
    await expect_code(
        harness.owner("owner-2").add_certification(
            pb.AddCertificationRequest(space_id=space.id, name="Fire", issuer="City")
        ),
        DENIED,
        "only the space owner may add certifications",
    )
    await expect_code(
        harness.owner("owner-2").request_verification(
            pb.RequestVerificationRequest(space_id=space.id)
        ),
        DENIED,
        "only the space owner may request its verification",
    )
    unchanged = await harness.anonymous().get_space(pb.GetSpaceRequest(space_id=space.id))
    assert unchanged.space.name == "Biblioteca Norte"
    by_admin = await harness.admin().update_space(request)
    assert by_admin.space.name == "Mine now"


async def test_update_changes_only_the_fields_given(harness: Harness) -> None:
    space = await harness.create_space(amenities=[pb.Amenity.WIFI])
    updated = (
        await harness.owner().update_space(
            pb.UpdateSpaceRequest(space_id=space.id, capacity=20, hourly_rate=eur(2500))
        )
    ).space
    assert (updated.capacity, updated.hourly_rate.amount_minor) == (20, 2500)
    assert (updated.name, updated.amenities) == (space.name, [pb.Amenity.WIFI])
    cleared = (
        await harness.owner().update_space(
            pb.UpdateSpaceRequest(space_id=space.id, amenities=[], update_amenities=True)
        )
    ).space
    assert cleared.amenities == []
    await expect_invalid(
        harness.owner().update_space(pb.UpdateSpaceRequest(space_id=space.id, capacity=0)),
        "space.capacity",
        "must be between 1 and 10000",
    )
    await expect_invalid(
        harness.owner().update_space(pb.UpdateSpaceRequest(space_id=space.id, time_zone="CEST")),
        "space.time_zone",
        "must be an IANA time zone name, e.g. Europe/Madrid",
    )
    await expect_code(
        harness.owner().update_space(pb.UpdateSpaceRequest(space_id="nope", name="x")),
        grpc.StatusCode.NOT_FOUND,
        "space nope not found",
    )
    await expect_invalid(
        harness.owner().update_space(pb.UpdateSpaceRequest(name="x")), "space_id", "is required"
    )


# -- verification -----------------------------------------------------------------------------


async def test_verification_workflow_attests_and_verifies(harness: Harness) -> None:
    space = await harness.create_space()
    owner, admin = harness.owner(), harness.admin()
    await expect_code(
        owner.request_verification(pb.RequestVerificationRequest(space_id=space.id)),
        PRECONDITION,
        "add at least one safety certification before requesting verification",
    )
    await expect_invalid(
        owner.add_certification(
            pb.AddCertificationRequest(
                space_id=space.id, name="Fire", issuer="City", valid_until=at(1, 0) - timedelta(1)
            )
        ),
        "certification.valid_until",
        "must be in the future",
    )
    await expect_invalid(
        owner.add_certification(pb.AddCertificationRequest(space_id=space.id, issuer="City")),
        "certification.name",
        "is required",
    )
    fire = (
        await owner.add_certification(
            pb.AddCertificationRequest(
                space_id=space.id, name="Fire safety", issuer="City", request_id="c1"
            )
        )
    ).certification
    retry = await owner.add_certification(
        pb.AddCertificationRequest(
            space_id=space.id, name="Fire safety", issuer="City", request_id="c1"
        )
    )
    assert retry.certification.id == fire.id and len(retry.space.safety_certifications) == 1
    child = (
        await owner.add_certification(
            pb.AddCertificationRequest(
                space_id=space.id,
                name="Child protection",
                issuer="Comunidad de Madrid",
                reference="CP-77",
                valid_until=at(1, 0, month=6),
            )
        )
    ).certification
    assert child.attested_by == "" and child.anchor_tx_hash == ""

    pending = (
        await owner.request_verification(
            pb.RequestVerificationRequest(space_id=space.id, note="please")
        )
    ).space
    assert pending.verification_status == pb.VerificationStatus.PENDING

    # Attest and review are admin only.
    attest = pb.AttestCertificationRequest(
        space_id=space.id, certification_id=child.id, child_protection=True
    )
    await expect_code(
        owner.attest_certification(attest), DENIED, "only an admin may attest certifications"
    )
    review = pb.ReviewVerificationRequest(space_id=space.id, approve=True)
    await expect_code(
        owner.review_verification(review), DENIED, "only an admin may review verifications"
    )
    await expect_code(
        admin.review_verification(review),
        PRECONDITION,
        "attest at least one unexpired certification before approving",
    )
    await expect_code(
        admin.attest_certification(
            pb.AttestCertificationRequest(space_id=space.id, certification_id="missing")
        ),
        grpc.StatusCode.NOT_FOUND,
        f"certification missing not found in space {space.id}",
    )

    harness.clock.advance(timedelta(hours=1))
    attested = await admin.attest_certification(attest)
    assert attested.certification.attested_by == "admin-1"
    assert attested.certification.attested_at == harness.clock.now()
    assert attested.certification.anchor_tx_hash == ""  # anchored later by the translator
    assert not attested.space.child_safe  # not verified yet
    again = await admin.attest_certification(attest)  # a retry: no second event
    assert again.certification.attested_at == attested.certification.attested_at

    verified = (await admin.review_verification(review)).space
    assert verified.verified and verified.verification_status == pb.VerificationStatus.VERIFIED
    assert verified.child_safe
    await expect_code(
        admin.review_verification(review), PRECONDITION, "verification is verified, not pending"
    )
    await expect_code(
        owner.request_verification(pb.RequestVerificationRequest(space_id=space.id)),
        PRECONDITION,
        "the space is already verified",
    )

    [attested_event] = await outbox_events(harness.database, "marketplace.certification_attested")
    assert attested_event == {
        "space_id": space.id,
        "owner_id": "owner-1",
        "certification_id": child.id,
        "name": "Child protection",
        "issuer": "Comunidad de Madrid",
        "reference": "CP-77",
        "valid_until": at(1, 0, month=6).isoformat(),
        "child_protection": True,
        "attested_by": "admin-1",
        "attested_at": harness.clock.now().isoformat(),
    }
    [verified_event] = await outbox_events(harness.database, "marketplace.space_verified")
    assert verified_event["certification_ids"] == [child.id]
    assert verified_event["child_safe"] is True

    # The child protection certificate expires: no longer child-safe, still verified.
    harness.clock.set(at(1, 0, month=6))
    later = (await harness.anonymous().get_space(pb.GetSpaceRequest(space_id=space.id))).space
    assert later.verified and not later.child_safe


async def test_address_change_resets_verification(harness: Harness) -> None:
    space = await harness.verified_child_safe_space()
    assert space.verified and space.child_safe
    same = await harness.owner().update_space(
        pb.UpdateSpaceRequest(space_id=space.id, address=space.address, name="Renamed")
    )
    assert same.space.verified
    moved = (
        await harness.owner().update_space(
            pb.UpdateSpaceRequest(space_id=space.id, address="Calle Nueva 2, Madrid")
        )
    ).space
    assert moved.verification_status == pb.VerificationStatus.UNVERIFIED
    assert not moved.child_safe
    assert all(c.attested_by == "" for c in moved.safety_certifications)


async def test_rejected_verification_can_be_requested_again(harness: Harness) -> None:
    space = await harness.create_space()
    await harness.owner().add_certification(
        pb.AddCertificationRequest(space_id=space.id, name="Fire", issuer="City")
    )
    await harness.owner().request_verification(pb.RequestVerificationRequest(space_id=space.id))
    rejected = await harness.admin().review_verification(
        pb.ReviewVerificationRequest(space_id=space.id, approve=False, note="photo unreadable")
    )
    assert rejected.space.verification_status == pb.VerificationStatus.REJECTED
    again = await harness.owner().request_verification(
        pb.RequestVerificationRequest(space_id=space.id)
    )
    assert again.space.verification_status == pb.VerificationStatus.PENDING


# -- availability -----------------------------------------------------------------------------


async def test_space_availability_is_schedule_minus_exceptions_minus_bookings(
    harness: Harness,
) -> None:
    availability = pb.Availability(
        weekly=[slot(6, "09:00", "13:00"), slot(6, "13:00", "18:00")],  # Saturdays
        exceptions=[
            pb.AvailabilityException(
                kind=pb.AvailabilityExceptionKind.from_string("CLOSED"),
                start_date="2026-01-17",
                end_date="2026-01-17",
                note="inventory",
            ),
            pb.AvailabilityException(
                kind=pb.AvailabilityExceptionKind.from_string("EXTRA"),
                start_date="2026-01-19",
                end_date="2026-01-19",
                start_time="20:00",
                end_time="24:00",
            ),
        ],
    )
    space = await harness.create_space(availability=availability, time_zone="Europe/Madrid")
    await harness.book(space.id, at(10, 10), at(10, 11))  # 11:00-12:00 Madrid
    free = await harness.anonymous().get_space_availability(
        pb.GetSpaceAvailabilityRequest(
            space_id=space.id, window=pb.TimeWindow(start_time=at(9, 0), end_time=at(21, 0))
        )
    )
    assert [(w.start_time, w.end_time) for w in free.free] == [
        (at(10, 8), at(10, 10)),  # Sat 10th 09:00-11:00 CET
        (at(10, 11), at(10, 17)),  # 12:00-18:00 CET (13:00 joins the two slots)
        (at(19, 19), at(19, 23)),  # Mon 19th extra 20:00-24:00 CET; Sat 17th closed
    ]
    await expect_invalid(
        harness.anonymous().get_space_availability(
            pb.GetSpaceAvailabilityRequest(
                space_id=space.id,
                window=pb.TimeWindow(start_time=at(1, 0), end_time=at(1, 0, month=3)),
            )
        ),
        "window.end_time",
        "window must be at most 31 days",
    )
    await expect_invalid(
        harness.anonymous().get_space_availability(
            pb.GetSpaceAvailabilityRequest(space_id=space.id)
        ),
        "window.start_time",
        "is required",
    )


async def test_set_availability_replaces_the_schedule(harness: Harness) -> None:
    space = await harness.create_space()
    updated = await harness.owner().set_availability(
        pb.SetAvailabilityRequest(
            space_id=space.id, availability=pb.Availability(weekly=[slot(1, "08:00", "12:30")])
        )
    )
    assert [(s.weekday, s.start_time, s.end_time) for s in updated.space.availability.weekly] == [
        (pb.Weekday.MONDAY, "08:00", "12:30")
    ]
    await expect_invalid(
        harness.owner().set_availability(
            pb.SetAvailabilityRequest(
                space_id=space.id,
                availability=pb.Availability(
                    exceptions=[
                        pb.AvailabilityException(
                            kind=pb.AvailabilityExceptionKind.from_string("CLOSED"),
                            start_date="2026-03-02",
                            end_date="2026-03-01",
                        )
                    ]
                ),
            )
        ),
        "availability.exceptions[0].end_date",
        "must not be before start_date",
    )


# -- search -----------------------------------------------------------------------------------


async def test_search_applies_every_filter(harness: Harness) -> None:
    madrid = pb.GeoPoint(latitude=40.4168, longitude=-3.7038)
    big = await harness.create_space(
        name="Big hall",
        capacity=40,
        rate=5000,
        geo=madrid,
        amenities=[pb.Amenity.WIFI, pb.Amenity.PROJECTOR],
        accessibility_features=[
            pb.AccessibilityFeature(
                feature_type=pb.AccessibilityType.from_string("WHEELCHAIR_ACCESS")
            )
        ],
    )
    small = await harness.create_space(
        name="Small room",
        description="quiet corner with a whiteboard",
        capacity=4,
        rate=1000,
        geo=pb.GeoPoint(latitude=41.3874, longitude=2.1686),  # Barcelona
        amenities=[pb.Amenity.WIFI],
    )
    safe = await harness.verified_child_safe_space("owner-2")

    async def ids(**filters: Any) -> set[str]:
        found = await harness.anonymous().search_spaces(pb.SearchSpacesRequest(**filters))
        return {s.id for s in found.spaces}

    assert await ids() == {big.id, small.id, safe.id}
    assert await ids(min_capacity=10) == {big.id}
    assert await ids(amenities=[pb.Amenity.WIFI]) == {big.id, small.id}
    assert await ids(amenities=[pb.Amenity.WIFI, pb.Amenity.PROJECTOR]) == {big.id}
    assert await ids(accessibility=[pb.AccessibilityType.WHEELCHAIR_ACCESS]) == {big.id}
    assert await ids(child_safe_only=True) == {safe.id}
    assert await ids(verified_only=True) == {safe.id}
    assert await ids(max_hourly_rate=eur(2000)) == {small.id, safe.id}
    usd = common_pb.Money(currency_code="USD", amount_minor=10**6)
    assert await ids(max_hourly_rate=usd) == set()
    assert await ids(query="WHITEBOARD quiet") == {small.id}
    assert await ids(near=madrid, radius_km=50) == {big.id}
    assert await ids(owner_id="owner-2") == {safe.id}

    # Time window: booked or closed spaces drop out.
    await harness.book(big.id, at(12, 10), at(12, 12))
    window = pb.TimeWindow(start_time=at(12, 11), end_time=at(12, 13))
    assert await ids(window=window) == {small.id, safe.id}
    await harness.owner("owner-2").set_availability(
        pb.SetAvailabilityRequest(
            space_id=safe.id, availability=pb.Availability(weekly=[slot(1, "09:00", "10:00")])
        )
    )
    assert await ids(window=window) == {small.id}
    assert await ids(window=pb.TimeWindow(start_time=at(12, 12), end_time=at(12, 13))) == {
        big.id,
        small.id,
    }

    await expect_invalid(
        harness.anonymous().search_spaces(pb.SearchSpacesRequest(near=madrid)),
        "radius_km",
        "must be positive when near is given",
    )
    await expect_invalid(
        harness.anonymous().search_spaces(
            pb.SearchSpacesRequest(window=pb.TimeWindow(start_time=at(2, 0), end_time=at(1, 0)))
        ),
        "window.end_time",
        "must be after start_time",
    )
    await expect_invalid(
        harness.anonymous().search_spaces(pb.SearchSpacesRequest(amenities=[pb.Amenity(0)])),
        "amenities[0]",
        "must be a known amenity",
    )


async def test_search_pages_with_a_cursor(harness: Harness) -> None:
    made = []
    for index in range(5):
        made.append((await harness.create_space(name=f"Room {index}")).id)
        harness.clock.advance(timedelta(seconds=1 if index % 2 else 0))  # ties on created_at too
    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        page = await harness.anonymous().search_spaces(
            pb.SearchSpacesRequest(page_size=2, page_token=token)
        )
        seen.extend(s.id for s in page.spaces)
        pages += 1
        token = page.next_page_token
        if not token:
            break
    assert sorted(seen) == sorted(made) and len(seen) == 5
    assert pages == 3
    await expect_invalid(
        harness.anonymous().search_spaces(pb.SearchSpacesRequest(page_token="garbage!")),
        "page_token",
        "malformed page token",
    )
    await expect_invalid(
        harness.anonymous().search_spaces(pb.SearchSpacesRequest(page_size=-1)),
        "page_size",
        "must not be negative",
    )


async def test_every_rpc_but_the_public_reads_needs_a_token(harness: Harness) -> None:
    servicer = MarketplaceServicer(harness.service)
    public = {"GetSpace", "SearchSpaces", "GetSpaceAvailability", "ListSpaceRatings"}
    assert servicer.public_methods == public
    methods = describe(servicer)
    assert all(m.implemented for m in methods)
    for method in methods:
        call: Any
        if method.cardinality is Cardinality.UNARY_STREAM:
            call = harness.channel.unary_stream(method.full_name, request_serializer=bytes)
        else:
            call = harness.channel.unary_unary(method.full_name, request_serializer=bytes)
        code = grpc.StatusCode.OK
        try:
            result = call(method.request_type())
            if method.cardinality is Cardinality.UNARY_STREAM:
                async for _ in result:
                    pass
            else:
                await result
        except grpc.aio.AioRpcError as error:
            code = error.code()
        if method.name in public:
            # Reached the handler: an empty request is answered, or is bad input.
            assert code in (grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT), method.name
        else:
            assert code is grpc.StatusCode.UNAUTHENTICATED, method.name
