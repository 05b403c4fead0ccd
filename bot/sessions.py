"""Per-conversation dialogue state behind one small store interface.

The dialogue engine loads a conversation's state at the start of a turn and
saves it at the end; `/forget` deletes it. Three stores:

- `SQLiteSessionStore` (default, `SESSION_DB`): one local file that survives
  restarts. WAL mode and a busy timeout make it safe for two processes, a lock
  makes one store safe for many threads (the Telegram front end calls from a
  thread pool). Rows idle longer than the timeout are ignored on load and
  purged lazily on save.
- `RedisSessionStore` (when `REDIS_URL` is set): several bot processes share
  conversations. Every key carries a TTL equal to the idle timeout, so expiry
  is Redis's job.
- `MemorySessionStore`: this process only, gone when it exits. For runs that
  must leave nothing behind and share nothing: a one-off `python -m bot ask`,
  the evaluation (every question in a fresh, private state), and tests.

One turn at a time per conversation: `with store.lock(conversation_id):` around
load -> turn -> save, so two messages of one conversation handled at the same
moment (two threads, or two bot processes) cannot both start from the old
state and lose one's update. Memory: a thread lock. SQLite: a thread lock plus
a lock on a byte of `<SESSION_DB>.lock` (fcntl), so other processes on the same
file wait too. Redis: redis-py's Lock on a key of its own, so every process
sharing the Redis waits; it expires after LOCK_TIMEOUT_S should its holder
die. A turn that cannot get the lock within LOCK_WAIT_S goes ahead without it
(logged): an answer matters more than a slot.

Privacy: a conversation is stored under the SHA-256 of its id, never the raw
Telegram chat id, and the value is exactly the JSON the caller gave, nothing
added. `delete` removes the row; the SQLite store also overwrites freed pages
and truncates its write-ahead log so the deleted text does not linger on disk.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable, ContextManager, Protocol

log = logging.getLogger(__name__)

# Namespace for Redis keys, so the sessions can share a Redis with other data.
REDIS_KEY_PREFIX = "debt-help:session:"
REDIS_LOCK_PREFIX = "debt-help:turn-lock:"
# A turn holds its conversation's lock for well under a second (a language model
# answer: up to LLM_TIMEOUT_S); a lock whose holder died expires after this.
LOCK_TIMEOUT_S = 60.0
# How long a turn waits for its conversation's lock before going ahead without it.
LOCK_WAIT_S = 30.0
LOCK_STRIPES = 64


class SessionStore(Protocol):
    def load(self, conversation_id: str) -> dict | None:
        """The saved state, or None when missing or idle longer than the timeout."""
        ...

    def save(self, conversation_id: str, state: dict) -> None:
        """Store a JSON-serialisable state; refreshes the idle timer."""
        ...

    def delete(self, conversation_id: str) -> None:
        """Remove everything stored about this conversation (/forget)."""
        ...

    def lock(self, conversation_id: str) -> ContextManager[None]:
        """Held around one turn (load -> answer -> save): one turn at a time per conversation."""
        ...


# A Telegram chat id has about ten digits, so a plain hash of it could be
# reversed by trying them all; with SESSION_KEY_SECRET set, keys are an HMAC.
_key_secret: bytes = b""


def set_key_secret(secret: str | None) -> None:
    global _key_secret
    _key_secret = (secret or "").encode("utf-8")


def conversation_key(conversation_id: str) -> str:
    """The storage key for a conversation: HMAC-SHA-256 (or SHA-256 without a secret) of its id."""
    data = str(conversation_id).encode("utf-8")
    if _key_secret:
        return hmac.new(_key_secret, data, hashlib.sha256).hexdigest()
    return hashlib.sha256(data).hexdigest()


def _stripe(conversation_id: str) -> int:
    """Which of LOCK_STRIPES locks a conversation uses: the same in every process."""
    return int(conversation_key(conversation_id)[:8], 16) % LOCK_STRIPES


class _StripedLocks:
    """A fixed number of thread locks, however many conversations there are."""

    def __init__(self) -> None:
        self._locks = [threading.Lock() for _ in range(LOCK_STRIPES)]

    @contextlib.contextmanager
    def hold(self, conversation_id: str, wait_s: float = LOCK_WAIT_S) -> Iterator[int]:
        stripe = _stripe(conversation_id)
        lock = self._locks[stripe]
        acquired = lock.acquire(timeout=wait_s)
        if not acquired:
            log.warning("event=turn_lock_timeout store=process waited_s=%.1f", wait_s)
        try:
            yield stripe
        finally:
            if acquired:
                lock.release()


def _dumps(state: dict) -> str:
    if not isinstance(state, dict):
        raise TypeError(f"session state must be a dict, not {type(state).__name__}")
    return json.dumps(state, ensure_ascii=False, separators=(",", ":"))


def open_session_store(settings: Any) -> SessionStore:
    """Redis when `settings.redis_url` is set, else SQLite at `settings.session_db`."""
    timeout = settings.session_idle_timeout_s
    set_key_secret(getattr(settings, "session_key_secret", None))
    if settings.redis_url:
        return RedisSessionStore(settings.redis_url, idle_timeout_s=timeout)
    return SQLiteSessionStore(settings.session_db, idle_timeout_s=timeout)


class MemorySessionStore:
    """Sessions kept in this process only (the `ask` CLI, eval, tests): nothing outlives it.

    Round-trips through JSON like the persistent stores, so what works here works there.
    """

    def __init__(self, idle_timeout_s: float = 1800, clock: Callable[[], float] = time.monotonic):
        self.idle_timeout_s = idle_timeout_s
        self._clock = clock
        self._rows: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()
        self._turns = _StripedLocks()

    def lock(self, conversation_id: str) -> ContextManager[None]:
        return self._turns.hold(conversation_id)

    def load(self, conversation_id: str) -> dict | None:
        key = conversation_key(conversation_id)
        with self._lock:
            row = self._rows.get(key)
            if row is None:
                return None
            if self._clock() - row[1] > self.idle_timeout_s:
                del self._rows[key]
                return None
            return json.loads(row[0])

    def save(self, conversation_id: str, state: dict) -> None:
        data = _dumps(state)
        with self._lock:
            self._rows[conversation_key(conversation_id)] = (data, self._clock())

    def delete(self, conversation_id: str) -> None:
        with self._lock:
            self._rows.pop(conversation_key(conversation_id), None)

    def close(self) -> None:
        pass


class SQLiteSessionStore:
    """A local SQLite file; see the module docstring."""

    BUSY_TIMEOUT_S = 10.0

    def __init__(self, path: Path | str, idle_timeout_s: float = 1800):
        self.path = Path(path)
        self.idle_timeout_s = idle_timeout_s
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._turns = _StripedLocks()
        # Turn locks across processes: byte <stripe> of this file, locked with fcntl
        # (released by the kernel if the process dies). Kept open: closing any
        # descriptor of the file would drop this process's locks on it.
        self._turn_file = open(self.path.with_name(self.path.name + ".lock"), "a+b")
        # One connection shared by all threads, serialised by the lock; other
        # processes are handled by SQLite's own locking (WAL + busy timeout).
        self._db = sqlite3.connect(
            self.path,
            timeout=self.BUSY_TIMEOUT_S,
            isolation_level=None,  # autocommit: every statement is its own transaction
            check_same_thread=False,
        )
        with self._lock:
            self._db.execute(f"PRAGMA busy_timeout = {int(self.BUSY_TIMEOUT_S * 1000)}")
            # Switching to WAL needs a moment alone with the file; when another
            # process is creating it at the same time SQLite says "locked" at once
            # instead of waiting, so wait here.
            deadline = time.monotonic() + self.BUSY_TIMEOUT_S
            while True:
                try:
                    self._db.execute("PRAGMA journal_mode = WAL")
                    break
                except sqlite3.OperationalError as exc:
                    if "locked" not in str(exc) or time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            self._db.execute("PRAGMA synchronous = NORMAL")
            self._db.execute("PRAGMA secure_delete = ON")  # deleted text is overwritten
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS sessions ("
                " key TEXT PRIMARY KEY,"
                " state TEXT NOT NULL,"
                " updated_at REAL NOT NULL)"
            )
            self._db.execute(
                "CREATE INDEX IF NOT EXISTS sessions_updated_at ON sessions (updated_at)"
            )
            self._purge_expired()

    @contextlib.contextmanager
    def lock(self, conversation_id: str) -> Iterator[None]:
        import fcntl

        with self._turns.hold(conversation_id) as stripe:  # this process's threads first
            deadline = time.monotonic() + LOCK_WAIT_S
            while True:
                try:
                    fcntl.lockf(self._turn_file, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, stripe)
                    locked = True
                    break
                except OSError:  # another process holds it
                    if time.monotonic() > deadline:
                        log.warning("event=turn_lock_timeout store=sqlite waited_s=%.1f", LOCK_WAIT_S)
                        locked = False
                        break
                    time.sleep(0.01)
            try:
                yield
            finally:
                if locked:
                    fcntl.lockf(self._turn_file, fcntl.LOCK_UN, 1, stripe)

    def _purge_expired(self) -> None:
        self._db.execute(
            "DELETE FROM sessions WHERE updated_at < ?", (time.time() - self.idle_timeout_s,)
        )

    def load(self, conversation_id: str) -> dict | None:
        with self._lock:
            row = self._db.execute(
                "SELECT state, updated_at FROM sessions WHERE key = ?",
                (conversation_key(conversation_id),),
            ).fetchone()
        if row is None or time.time() - row[1] > self.idle_timeout_s:
            return None  # an expired row is purged by the next save
        return json.loads(row[0])

    def save(self, conversation_id: str, state: dict) -> None:
        data = _dumps(state)
        with self._lock:
            self._db.execute(
                "INSERT INTO sessions (key, state, updated_at) VALUES (?, ?, ?)"
                " ON CONFLICT (key) DO UPDATE"
                " SET state = excluded.state, updated_at = excluded.updated_at",
                (conversation_key(conversation_id), data, time.time()),
            )
            self._purge_expired()

    def delete(self, conversation_id: str) -> None:
        with self._lock:
            self._db.execute(
                "DELETE FROM sessions WHERE key = ?", (conversation_key(conversation_id),)
            )
            # Move the (overwritten) pages into the main file and empty the log,
            # so the deleted state is not left behind in the -wal file. Another
            # process reading at this moment can keep the log; that is harmless,
            # its frames are overwritten by later writes.
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        with self._lock:
            self._db.close()
        self._turn_file.close()


class RedisSessionStore:
    """Redis-backed store; keys expire after the idle timeout (PX on every save)."""

    def __init__(
        self,
        url: str,
        idle_timeout_s: float = 1800,
        prefix: str = REDIS_KEY_PREFIX,
        client: Any = None,
        lock_prefix: str = REDIS_LOCK_PREFIX,
        lock_timeout_s: float = LOCK_TIMEOUT_S,
        lock_wait_s: float = LOCK_WAIT_S,
    ):
        import redis  # only needed when REDIS_URL is set

        self.idle_timeout_s = idle_timeout_s
        self.prefix = prefix
        self.lock_prefix = lock_prefix
        self.lock_timeout_s = lock_timeout_s
        self.lock_wait_s = lock_wait_s
        self._redis = client if client is not None else redis.Redis.from_url(url)

    @contextlib.contextmanager
    def lock(self, conversation_id: str) -> Iterator[None]:
        """redis-py's Lock (SET NX PX with a random token; released only by its holder)."""
        from redis.exceptions import LockError

        turn = self._redis.lock(self.lock_prefix + conversation_key(conversation_id),
                                timeout=self.lock_timeout_s, blocking_timeout=self.lock_wait_s)
        locked = turn.acquire()
        if not locked:
            log.warning("event=turn_lock_timeout store=redis waited_s=%.1f", self.lock_wait_s)
        try:
            yield
        finally:
            if locked:
                try:
                    turn.release()
                except LockError:  # held longer than lock_timeout_s: it had expired
                    log.warning("event=turn_lock_expired store=redis timeout_s=%.0f", self.lock_timeout_s)

    def key(self, conversation_id: str) -> str:
        return self.prefix + conversation_key(conversation_id)

    def load(self, conversation_id: str) -> dict | None:
        data = self._redis.get(self.key(conversation_id))
        return None if data is None else json.loads(data)

    def save(self, conversation_id: str, state: dict) -> None:
        ttl_ms = max(1, int(self.idle_timeout_s * 1000))
        self._redis.set(self.key(conversation_id), _dumps(state).encode("utf-8"), px=ttl_ms)

    def delete(self, conversation_id: str) -> None:
        self._redis.delete(self.key(conversation_id))

    def close(self) -> None:
        self._redis.close()
