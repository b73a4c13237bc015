"""The JSON-LD contexts Keiko's credentials use, bundled, and a loader that never goes to
the network.

Every context a Keiko credential or presentation names is a file in
``chain/credentials/contexts/`` (taken verbatim from the package registries that publish
them; see ``docs/credentials.md``). The gateway serves the same bytes under
``/contexts/<file>`` and Keiko's own context also at ``/ns/credentials/v1``, the path of its
URL. JSON-LD processing (RDF canonicalization for ``eddsa-rdfc-2022``) resolves contexts
only through :func:`document_loader`: an unknown URL is an error, never a fetch, so
verification works offline and a document cannot make the verifier reach out to an
address it chose.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

from services.kit.errors import ValidationError

CONTEXTS_DIR = Path(__file__).parent / "contexts"

CREDENTIALS_V2 = "https://www.w3.org/ns/credentials/v2"
DATA_INTEGRITY_V2 = "https://w3id.org/security/data-integrity/v2"
STATUS_LIST_V1 = "https://www.w3.org/ns/credentials/status/v1"
OPEN_BADGES_V3 = "https://purl.imsglobal.org/spec/ob/v3p0/context-3.0.3.json"
KEIKO_CREDENTIALS_V1 = "https://keiko.network/ns/credentials/v1"
KEIKO_CONTEXT_PATH = "/ns/credentials/v1"

BUNDLED: Mapping[str, str] = MappingProxyType(
    {
        CREDENTIALS_V2: "credentials-v2.jsonld",
        DATA_INTEGRITY_V2: "data-integrity-v2.jsonld",
        STATUS_LIST_V1: "vc-bitstring-status-list-v1.jsonld",
        OPEN_BADGES_V3: "ob-v3p0-context-3.0.3.jsonld",
        KEIKO_CREDENTIALS_V1: "keiko-credentials-v1.jsonld",
    }
)

JSONLD_MEDIA_TYPE = "application/ld+json"

LoadedDocument = dict[str, Any]
DocumentLoader = Callable[[str, Any], LoadedDocument]


@dataclass(frozen=True, slots=True)
class BundledContext:
    url: str
    file_name: str
    body: bytes

    @property
    def document(self) -> Any:
        return json.loads(self.body)


@cache
def bundled_context(url: str) -> BundledContext | None:
    """The bundled context of ``url`` (its exact bytes), or None."""
    file_name = BUNDLED.get(url)
    if file_name is None:
        return None
    return BundledContext(url, file_name, (CONTEXTS_DIR / file_name).read_bytes())


def bundled_contexts() -> list[BundledContext]:
    """Every bundled context, in a stable order (what the gateway serves)."""
    contexts = [bundled_context(url) for url in BUNDLED]
    return [c for c in contexts if c is not None]


def context_by_file(file_name: str) -> BundledContext | None:
    """The bundled context stored as ``file_name`` (the gateway's ``/contexts/<file>``)."""
    for url, name in BUNDLED.items():
        if name == file_name:
            return bundled_context(url)
    return None


class DocumentNotBundled(ValidationError):
    """A JSON-LD document named a context Keiko does not bundle (no network fallback)."""

    def __init__(self, url: str) -> None:
        super().__init__("@context", f"{url!r} is not a context this verifier knows offline")
        self.url = url


@cache
def _parsed(url: str) -> Any:
    context = bundled_context(url)
    if context is None:
        raise DocumentNotBundled(url)
    return context.document


def document_loader(extra: Mapping[str, Any] | None = None) -> DocumentLoader:
    """A pyld document loader over the bundled contexts (plus ``extra`` URL -> document,
    for test fixtures). Unknown URLs raise :class:`DocumentNotBundled`."""
    extra_docs = dict(extra or {})

    def load(url: str, options: Any = None) -> LoadedDocument:
        document = extra_docs[url] if url in extra_docs else _parsed(url)
        return {
            "contentType": JSONLD_MEDIA_TYPE,
            "contextUrl": None,
            "documentUrl": url,
            "document": document,
        }

    return load


__all__ = [
    "BUNDLED",
    "CREDENTIALS_V2",
    "DATA_INTEGRITY_V2",
    "KEIKO_CONTEXT_PATH",
    "KEIKO_CREDENTIALS_V1",
    "OPEN_BADGES_V3",
    "STATUS_LIST_V1",
    "BundledContext",
    "DocumentLoader",
    "DocumentNotBundled",
    "bundled_context",
    "bundled_contexts",
    "context_by_file",
    "document_loader",
]
