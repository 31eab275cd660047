"""A cached reply and its byte envelope (our own versioned format; never pickle).

Layout, big-endian: magic ``HGC1``, status u16, stored_at f64, ttl f64, stale f64, then four
u32-length-prefixed fields: reason, etag, headers (JSON list of pairs), body.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any

from aiocache.serializers import BaseSerializer

MAGIC = b"HGC1"
_HEAD = struct.Struct(">4sHddd4I")
_OVERHEAD = 160  # bookkeeping per entry (dict slots, object headers): a fair estimate


@dataclass(frozen=True, slots=True, weakref_slot=True)  # the hit path refers to it weakly
class Entry:
    """One stored reply, immutable so no caller can change what the next one gets."""

    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    stored_at: float  # wall-clock seconds (replicas share it)
    ttl: float
    stale: float
    etag: str | None = None

    @property
    def expires_at(self) -> float:
        return self.stored_at + self.ttl + self.stale

    @property
    def size(self) -> int:
        head = sum(len(k) + len(v) for k, v in self.headers)
        return len(self.body) + head + len(self.reason) + len(self.etag or "") + _OVERHEAD


def encode(entry: Entry) -> bytes:
    reason = entry.reason.encode()
    etag = (entry.etag or "").encode()
    headers = json.dumps(entry.headers, separators=(",", ":")).encode()
    head = _HEAD.pack(MAGIC, entry.status, entry.stored_at, entry.ttl, entry.stale,
                      len(reason), len(etag), len(headers), len(entry.body))  # fmt: skip
    return b"".join((head, reason, etag, headers, entry.body))


def decode(data: bytes) -> Entry | None:
    """The entry, or None when the bytes are not a whole envelope of this version."""
    if len(data) < _HEAD.size:
        return None
    magic, status, stored_at, ttl, stale, n_reason, n_etag, n_headers, n_body = _HEAD.unpack_from(
        data
    )
    if magic != MAGIC or len(data) != _HEAD.size + n_reason + n_etag + n_headers + n_body:
        return None
    at = _HEAD.size
    reason = data[at : at + n_reason].decode()
    at += n_reason
    etag = data[at : at + n_etag].decode() or None
    at += n_etag
    try:
        pairs = json.loads(data[at : at + n_headers])
    except ValueError:
        return None
    at += n_headers
    headers = tuple((str(k), str(v)) for k, v in pairs)
    return Entry(status, reason, headers, data[at:], stored_at, ttl, stale, etag)


class EnvelopeSerializer(BaseSerializer):  # type: ignore[misc]
    """aiocache serializer for ``Entry`` values: binary, so no encoding on the backend."""

    DEFAULT_ENCODING = None

    def dumps(self, value: Any) -> bytes:
        if not isinstance(value, Entry):
            raise TypeError("EnvelopeSerializer stores Entry values only")
        return encode(value)

    def loads(self, value: Any) -> Entry | None:
        if value is None:
            return None
        return decode(bytes(value))
