"""The public preview's copy in Redis, stored together with the generation it shows.

One hash, ``PREVIEW_KEY``, holds ``generation`` (the active generation's id, 0 before the
first one), the JSON body and its strong ETag, and a gzip of the body with its own strong
ETag (a different representation, RFC 9110 8.8.3). A hit is one HMGET of the generation
and one variant: it touches no Postgres, so the hash must never claim an older generation
than the active one. Two writers keep it so:

- ``announce_active_generation`` runs right after a swap commits (in
  ``models.leaderboards.generations.recompute``): it replaces the hash with the new
  generation and no body, so the next request rebuilds it from Postgres.
- ``store_preview`` runs after a miss built a body from Postgres. Both are max-only
  compare-and-sets in Lua: a request that read generation N while N+1 was being swapped
  in can never store N over N+1.

The hash expires ``PREVIEW_TTL_S`` after it was written, so a body is never older than
that (a bot made private meanwhile leaves it soon) and a lost announcement (Redis away
during the swap, a process that never bound a client) costs at most that long a stale
preview. A missing hash falls back to Postgres. See docs/leaderboards.md, "Preview".
"""

from __future__ import annotations

import gzip
import hashlib
import time
from dataclasses import dataclass

import structlog
from redis import Redis
from redis.exceptions import RedisError

log = structlog.get_logger(__name__)

PREVIEW_KEY = "botyard:leaderboards:preview"
PREVIEW_TTL_S = 60
# A gzip of the ~100 KB body is ~10x smaller; it is made once per fill, so a middle level.
GZIP_LEVEL = 6
NO_GENERATION = 0

# KEYS[1] the hash; ARGV: generation, etag, body, gzip etag, gzip body, ttl.
# Never over a newer generation; the same generation's body is replaced (it is newer).
_STORE = """
local stored = tonumber(redis.call('hget', KEYS[1], 'generation'))
if stored and stored > tonumber(ARGV[1]) then return 0 end
redis.call('hset', KEYS[1], 'generation', ARGV[1], 'etag', ARGV[2], 'body', ARGV[3],
           'gzip_etag', ARGV[4], 'gzip_body', ARGV[5])
redis.call('expire', KEYS[1], ARGV[6])
return 1
"""

# KEYS[1] the hash; ARGV: generation, ttl. Only forward: an equal one keeps its body.
_ANNOUNCE = """
local stored = tonumber(redis.call('hget', KEYS[1], 'generation'))
if stored and stored >= tonumber(ARGV[1]) then return 0 end
redis.call('del', KEYS[1])
redis.call('hset', KEYS[1], 'generation', ARGV[1])
redis.call('expire', KEYS[1], ARGV[2])
return 1
"""


@dataclass(frozen=True)
class CachedBody:
    """One representation of the preview: the bytes sent and their strong ETag."""

    generation_id: int
    etag: str
    body: bytes


@dataclass(frozen=True)
class Preview:
    """A freshly built preview in both encodings."""

    generation_id: int
    etag: str
    body: bytes
    gzip_etag: str
    gzip_body: bytes

    @classmethod
    def of(cls, generation_id: int | None, body: bytes) -> Preview:
        """The preview of ``generation_id`` (None: no generation yet) with ``body`` as JSON."""
        # mtime=0: the same body always gzips to the same bytes, so to the same ETag.
        packed = gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0)
        return cls(
            generation_id=generation_id or NO_GENERATION,
            etag=_etag(body),
            body=body,
            gzip_etag=_etag(packed),
            gzip_body=packed,
        )

    def variant(self, gzipped: bool) -> CachedBody:
        """The gzip or the identity representation."""
        if gzipped:
            return CachedBody(self.generation_id, self.gzip_etag, self.gzip_body)
        return CachedBody(self.generation_id, self.etag, self.body)


def _etag(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:32]


def read_preview(redis: Redis, gzipped: bool) -> CachedBody | None:
    """The cached preview in the wanted encoding, or None on a miss (raises RedisError)."""
    fields = ["generation", "gzip_etag", "gzip_body"] if gzipped else ["generation", "etag", "body"]
    generation, etag, body = redis.hmget(PREVIEW_KEY, fields)
    if not (isinstance(generation, bytes) and isinstance(etag, bytes) and isinstance(body, bytes)):
        return None
    return CachedBody(int(generation), etag.decode(), body)


def store_preview(redis: Redis, preview: Preview, read_at: float) -> bool:
    """Keep ``preview``, built from Postgres read at ``read_at`` (time.monotonic()).

    False when a newer generation is already announced, or when the read is older than
    the hash's lifetime: an announcement made after it could have expired meanwhile, and
    nothing would then stop an old generation from being stored. Raises RedisError.
    """
    if time.monotonic() - read_at >= PREVIEW_TTL_S:
        return False
    stored = redis.eval(
        _STORE,
        1,
        PREVIEW_KEY,
        preview.generation_id,
        preview.etag,
        preview.body,
        preview.gzip_etag,
        preview.gzip_body,
        PREVIEW_TTL_S,
    )
    return bool(stored)


_announce_to: Redis | None = None


def set_preview_redis(redis: Redis | None) -> Redis | None:
    """Bind the Redis that swaps announce to (the entry points do); returns the old one."""
    global _announce_to  # one per process, like the outbox relay: recompute takes no client
    previous, _announce_to = _announce_to, redis
    return previous


def announce_active_generation(generation_id: int) -> bool:
    """Tell the preview cache that ``generation_id`` is active now; whether it moved.

    Called after the swap committed. Best effort: without a bound Redis, or with Redis
    away, the old preview is served until its hash expires (``PREVIEW_TTL_S``).
    """
    if _announce_to is None:
        log.warning("leaderboard_preview_not_announced", generation_id=generation_id)
        return False
    try:
        moved = _announce_to.eval(_ANNOUNCE, 1, PREVIEW_KEY, generation_id, PREVIEW_TTL_S)
    except RedisError as exc:
        log.warning(
            "leaderboard_preview_cache_unavailable",
            generation_id=generation_id,
            error_type=type(exc).__name__,
        )
        return False
    return bool(moved)


def forget_preview_body(redis: Redis) -> bool:
    """Drop the stored preview but keep its generation; whether Redis took it.

    For a change that must leave the preview now rather than when the hash expires (a
    moderator hiding a bot): the next request rebuilds the body from Postgres, which reads
    the bots' current state. Called after that change committed. Best effort, like the
    announcement.
    """
    try:
        redis.hdel(PREVIEW_KEY, "etag", "body", "gzip_etag", "gzip_body")
    except RedisError as exc:
        log.warning("leaderboard_preview_cache_unavailable", error_type=type(exc).__name__)
        return False
    return True
