"""Failed executions: `CairoRevert` with the decoded Cairo panic (short strings as text)
and the Starknet error code, and the check that calldata and signatures are felts."""

from __future__ import annotations

import chain.cairo_compat  # noqa: F401  (must precede starkware imports)

# isort: split
import re
from collections.abc import Sequence

from starkware.crypto.signature.signature import FIELD_PRIME
from starkware.starkware_utils.error_handling import StarkException


class CairoRevert(Exception):
    """A failed execution; the state is unchanged."""

    def __init__(self, reason: str, *, code: str, panic_data: list[int], message: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.panic_data = panic_data
        self.message = message  # cairo-lang's full message, with the Cairo traceback


def short_string(felt: int) -> str | None:
    """The text of a Cairo short string, or None if the felt is not printable ASCII."""
    if felt == 0 or felt.bit_length() > 31 * 8:
        return None
    raw = felt.to_bytes((felt.bit_length() + 7) // 8, "big")
    if all(0x20 <= b < 0x7F for b in raw):
        return raw.decode("ascii")
    return None


def decode_panic(panic_data: Sequence[int]) -> str:
    """Render panic felts the way Cairo wrote them: short strings as text, others as hex."""
    parts = [short_string(f) or hex(f) for f in panic_data]
    return ", ".join(parts)


# cairo-lang reports a Cairo 1 panic as "... failure reason: [0x656d707479, ...]." and,
# for a panic in a nested call, quotes that message inside the outer one: the first
# occurrence is the innermost (the original) panic.
_FAILURE_REASON = re.compile(r"failure reason: \[([0-9a-fA-Fx, ]*)\]")


def to_revert(exc: StarkException) -> CairoRevert:
    message = str(exc.message or "")
    code = getattr(exc.code, "name", str(exc.code))
    match = _FAILURE_REASON.search(message)
    if match:
        panic_data = [int(x, 16) for x in match.group(1).split(",") if x.strip()]
        reason = decode_panic(panic_data)
    else:
        panic_data = []
        reason = message.strip().splitlines()[0] if message.strip() else code
    return CairoRevert(reason, code=code, panic_data=panic_data, message=message)


def felts(values: Sequence[int], what: str) -> list[int]:
    """Reject what is not a felt: cairo-lang would silently reduce it modulo P."""
    felts = list(values)
    for value in felts:
        if not 0 <= value < FIELD_PRIME:
            raise CairoRevert(
                f"{what}: {value:#x} is not a field element",
                code="OUT_OF_RANGE_FELT",
                panic_data=[],
                message="",
            )
    return felts
