"""GraphQL multipart uploads kept in memory: biometric files must never touch disk.

Starlette's parser spills any file above 1 MiB to a temporary file; this adapter keeps
the whole (capped) body in memory and refuses larger bodies with HTTP 413 before parsing.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator

from cross_web import FormData, HTTPException, StarletteRequestAdapter
from starlette.formparsers import MultiPartException, MultiPartParser

from gateway.schema.humanity import MAX_MULTIPART_BYTES, MAX_UPLOAD_FILES


class _InMemoryMultiPartParser(MultiPartParser):
    # SpooledTemporaryFile rolls over to disk above max_size; the body is capped below it.
    spool_max_size = MAX_MULTIPART_BYTES + 1


async def _capped(stream: AsyncIterator[bytes], limit: int) -> AsyncGenerator[bytes, None]:
    seen = 0
    async for chunk in stream:
        seen += len(chunk)
        if seen > limit:
            raise HTTPException(413, f"request body is larger than {limit} bytes")
        yield chunk


class InMemoryUploadRequestAdapter(StarletteRequestAdapter):
    """Multipart parsing that keeps files in memory, with a body size cap."""

    async def get_form_data(self) -> FormData:
        request = self._request
        declared = request.headers.get("content-length", "")
        if declared.isascii() and declared.isdigit() and int(declared) > MAX_MULTIPART_BYTES:
            raise HTTPException(413, f"request body is larger than {MAX_MULTIPART_BYTES} bytes")
        parser = _InMemoryMultiPartParser(
            request.headers,
            _capped(request.stream(), MAX_MULTIPART_BYTES),
            max_files=MAX_UPLOAD_FILES,
            max_fields=8,
        )
        try:
            form = await parser.parse()
        except MultiPartException as error:
            raise HTTPException(400, error.message) from None
        return FormData(files=form, form=form)
