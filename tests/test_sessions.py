"""Session stores: what a user would notice (context kept, expired, forgotten, shared).

The Redis tests run against a real `redis-server` on a free loopback port
(the `redis_url` fixture in conftest.py, tests/helpers_redis.py); a missing
binary is a failure, not a skip.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bot.sessions import (
    REDIS_KEY_PREFIX,
    MemorySessionStore,
    RedisSessionStore,
    SQLiteSessionStore,
    conversation_key,
    open_session_store,
)
from bot.settings import Settings

REPO = Path(__file__).resolve().parents[1]
CHAT_ID = "tg:987654321"  # what the Telegram front end would pass: never stored raw
STATE = {"topic": "催收", "slots": {"product": "花呗", "overdue": "一个月"}, "history": ["催收打电话骂我"]}


# --- helpers -------------------------------------------------------------------------


def run_python(code: str, cwd: Path, **env_vars: str) -> str:
    """Run `code` in a fresh interpreter (a real restart / a second process)."""
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "SESSION_DB", "SESSION_IDLE_TIMEOUT_S")}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(env_vars)
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, f"subprocess failed:\n{done.stderr}"
    return done.stdout


def sqlite_files(db: Path) -> bytes:
    """Everything SQLite keeps on disk for this database: main file, WAL, shared memory."""
    parts = [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")]
    return b"".join(p.read_bytes() for p in parts if p.exists())


@pytest.fixture(params=["memory", "sqlite", "redis"])
def make_store(request, tmp_path):
    """A factory for a store of each kind, with a chosen idle timeout."""
    opened = []

    def make(idle_timeout_s: float = 60):
        if request.param == "memory":
            store = MemorySessionStore(idle_timeout_s=idle_timeout_s)
        elif request.param == "sqlite":
            store = SQLiteSessionStore(tmp_path / "sessions.sqlite3", idle_timeout_s=idle_timeout_s)
        else:
            url = request.getfixturevalue("redis_url")
            request.getfixturevalue("redis_client")  # empty database
            store = RedisSessionStore(url, idle_timeout_s=idle_timeout_s)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


# --- the interface, for every store --------------------------------------------------


def test_store_keeps_replaces_and_deletes_a_conversation(make_store):
    store = make_store()
    assert store.load(CHAT_ID) is None
    store.save(CHAT_ID, STATE)
    assert store.load(CHAT_ID) == STATE
    assert store.load("tg:other") is None  # conversations are separate

    store.save(CHAT_ID, {"topic": "征信"})
    assert store.load(CHAT_ID) == {"topic": "征信"}

    store.delete(CHAT_ID)
    assert store.load(CHAT_ID) is None
    store.delete(CHAT_ID)  # forgetting twice is fine


def test_loaded_state_is_a_copy(make_store):
    store = make_store()
    store.save(CHAT_ID, STATE)
    loaded = store.load(CHAT_ID)
    loaded["topic"] = "changed"
    assert store.load(CHAT_ID) == STATE


def test_state_must_be_json(make_store):
    store = make_store()
    with pytest.raises(TypeError):
        store.save(CHAT_ID, {"when": object()})
    with pytest.raises(TypeError):
        store.save(CHAT_ID, ["not", "a", "dict"])
    assert store.load(CHAT_ID) is None


def test_idle_timeout_drops_context_and_saving_refreshes_it(make_store):
    store = make_store(idle_timeout_s=0.5)
    store.save(CHAT_ID, STATE)
    time.sleep(0.3)
    store.save(CHAT_ID, STATE)  # the user said something: the timer starts again
    time.sleep(0.3)
    assert store.load(CHAT_ID) == STATE  # 0.6 s since the first save, 0.3 s idle
    time.sleep(0.7)
    assert store.load(CHAT_ID) is None


def test_memory_store_expiry_with_a_fake_clock():
    now = [1000.0]
    store = MemorySessionStore(idle_timeout_s=1800, clock=lambda: now[0])
    store.save(CHAT_ID, STATE)
    now[0] += 1800
    assert store.load(CHAT_ID) == STATE
    now[0] += 1
    assert store.load(CHAT_ID) is None


# --- choosing a store from settings -------------------------------------------------


def test_open_session_store_follows_settings(tmp_path, redis_url):
    sqlite_settings = Settings(session_db=tmp_path / "s.sqlite3", redis_url=None, session_idle_timeout_s=5)
    store = open_session_store(sqlite_settings)
    assert isinstance(store, SQLiteSessionStore) and store.idle_timeout_s == 5
    store.close()
    assert (tmp_path / "s.sqlite3").exists()

    store = open_session_store(Settings(session_db=tmp_path / "unused.sqlite3", redis_url=redis_url))
    assert isinstance(store, RedisSessionStore)
    store.close()
    assert not (tmp_path / "unused.sqlite3").exists()


# --- SQLite ------------------------------------------------------------------------------

SAVE_IN_PROCESS = """
from bot.settings import Settings
from bot.sessions import open_session_store
store = open_session_store(Settings())
store.save({cid!r}, {state!r})
"""

LOAD_IN_PROCESS = """
import json
from bot.settings import Settings
from bot.sessions import open_session_store
print(json.dumps(open_session_store(Settings()).load({cid!r}), ensure_ascii=False))
"""


def test_conversation_survives_a_restart(tmp_path):
    db = tmp_path / "data" / "sessions.sqlite3"
    run_python(SAVE_IN_PROCESS.format(cid=CHAT_ID, state=STATE), tmp_path, SESSION_DB=str(db))
    out = run_python(LOAD_IN_PROCESS.format(cid=CHAT_ID), tmp_path, SESSION_DB=str(db))
    assert json.loads(out) == STATE


def test_forget_leaves_nothing_on_disk(tmp_path):
    db = tmp_path / "sessions.sqlite3"
    secret = "我欠了招商银行三万二"
    store = SQLiteSessionStore(db)
    store.save(CHAT_ID, {"history": [secret]})
    store.save("tg:someone-else", {"history": ["别人的对话"]})

    on_disk = sqlite_files(db)
    assert CHAT_ID.encode() not in on_disk  # stored under a hash only
    assert conversation_key(CHAT_ID).encode() in on_disk
    assert secret.encode() in on_disk  # (so the check below means something)

    store.delete(CHAT_ID)
    assert secret.encode() not in sqlite_files(db)
    assert conversation_key(CHAT_ID).encode() not in sqlite_files(db)
    store.close()
    store = SQLiteSessionStore(db)
    assert store.load(CHAT_ID) is None
    assert store.load("tg:someone-else") == {"history": ["别人的对话"]}
    store.close()


def test_expired_rows_are_purged(tmp_path):
    db = tmp_path / "sessions.sqlite3"
    store = SQLiteSessionStore(db, idle_timeout_s=0.2)
    store.save("tg:1", {"topic": "old"})
    time.sleep(0.4)
    store.save("tg:2", {"topic": "new"})  # lazy purge happens on save
    store.close()
    import sqlite3

    with sqlite3.connect(db) as raw:
        keys = [row[0] for row in raw.execute("SELECT key FROM sessions")]
    assert keys == [conversation_key("tg:2")]


def test_one_store_from_many_threads(tmp_path):
    store = SQLiteSessionStore(tmp_path / "sessions.sqlite3")
    errors: list[BaseException] = []

    def chat(n: int) -> None:
        try:
            for turn in range(40):
                state = store.load(f"tg:{n}") or {"turns": []}
                state["turns"].append(turn)
                store.save(f"tg:{n}", state)
                store.save("tg:shared", {"last": n})
        except BaseException as exc:  # noqa: BLE001 - collected for the assert
            errors.append(exc)

    threads = [threading.Thread(target=chat, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for n in range(8):
        assert store.load(f"tg:{n}") == {"turns": list(range(40))}
    assert store.load("tg:shared")["last"] in range(8)
    store.close()


HAMMER = """
import sys
from bot.sessions import SQLiteSessionStore
store = SQLiteSessionStore(sys.argv[1])
me = sys.argv[2]
for i in range(150):
    state = store.load("tg:" + me) or {"n": 0}
    state["n"] += 1
    store.save("tg:" + me, state)
    store.save("tg:shared", {"by": me, "i": i})
"""


def test_two_processes_use_one_sqlite_file(tmp_path):
    db = tmp_path / "sessions.sqlite3"
    env = {k: v for k, v in os.environ.items()}
    env["PYTHONPATH"] = str(REPO)
    procs = [
        subprocess.Popen([sys.executable, "-c", HAMMER, str(db), name], env=env,
                         stderr=subprocess.PIPE, text=True)
        for name in ("a", "b")
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    store = SQLiteSessionStore(db)
    assert store.load("tg:a") == {"n": 150}
    assert store.load("tg:b") == {"n": 150}
    assert store.load("tg:shared")["i"] == 149
    store.close()


# --- Redis ------------------------------------------------------------------------------


def test_two_processes_share_a_conversation_through_redis(tmp_path, redis_url, redis_client):
    first = {"topic": "催收", "history": ["催收打电话骂我"]}
    run_python(SAVE_IN_PROCESS.format(cid=CHAT_ID, state=first), tmp_path, REDIS_URL=redis_url)
    # A second bot process picks the conversation up and continues it.
    continue_it = """
from bot.settings import Settings
from bot.sessions import open_session_store
store = open_session_store(Settings())
state = store.load({cid!r})
state["history"].append("那怎么办")
store.save({cid!r}, state)
"""
    run_python(continue_it.format(cid=CHAT_ID), tmp_path, REDIS_URL=redis_url)
    out = run_python(LOAD_IN_PROCESS.format(cid=CHAT_ID), tmp_path, REDIS_URL=redis_url)
    assert json.loads(out) == {"topic": "催收", "history": ["催收打电话骂我", "那怎么办"]}
    assert not list(tmp_path.rglob("*.sqlite3"))  # nothing fell back to SQLite


def test_redis_keys_are_hashed_and_expire(redis_url, redis_client):
    store = RedisSessionStore(redis_url, idle_timeout_s=1800)
    store.save(CHAT_ID, STATE)
    keys = [k.decode() for k in redis_client.keys("*")]
    expected = REDIS_KEY_PREFIX + hashlib.sha256(CHAT_ID.encode()).hexdigest()
    assert keys == [expected]
    assert CHAT_ID not in keys[0]
    assert json.loads(redis_client.get(expected)) == STATE  # only what the caller gave
    assert 1_790_000 < redis_client.pttl(expected) <= 1_800_000  # idle expiry is Redis's job
    store.delete(CHAT_ID)
    assert redis_client.keys("*") == []
    store.close()


def test_two_bot_processes_share_a_conversation_through_redis(redis_url, redis_client):
    """The dialogue, not just the store: a follow-up handled by another process keeps the topic."""
    import json as _json
    import os as _os
    import subprocess as _subprocess
    import sys as _sys

    env = _os.environ.copy()
    env["REDIS_URL"] = redis_url

    def chat(message):
        result = _subprocess.run([_sys.executable, "-m", "bot", "chat", "--json", "--conversation", "shared-1"],
                                 input=message + "\n", capture_output=True, text=True, env=env, timeout=120)
        assert result.returncode == 0, result.stderr
        return _json.loads(result.stdout)

    first = chat("催收打电话骂我")
    follow_up = chat("那怎么办")
    assert first["kind"] == "answer"
    assert follow_up["kind"] == "answer"  # without the shared topic this would be a clarify
    assert redis_client.keys("debt-help:session:*")
    unrelated = _subprocess.run([_sys.executable, "-m", "bot", "chat", "--json", "--conversation", "other"],
                                input="那怎么办\n", capture_output=True, text=True, env=env, timeout=120)
    assert _json.loads(unrelated.stdout)["kind"] == "clarify"


# --- one turn at a time per conversation ----------------------------------------------


def test_a_conversation_turn_waits_for_the_one_in_progress(make_store):
    store = make_store()
    order: list[str] = []
    first_in = threading.Event()

    def turn(name: str, conversation: str, hold_s: float) -> None:
        with store.lock(conversation):
            order.append(name + ":in")
            first_in.set()
            time.sleep(hold_s)
            order.append(name + ":out")

    first = threading.Thread(target=turn, args=("a", CHAT_ID, 0.3))
    first.start()
    first_in.wait(5)
    started = time.monotonic()
    turn("other", "tg:other", 0)  # another conversation does not wait
    assert time.monotonic() - started < 0.2
    turn("b", CHAT_ID, 0)  # the same one does
    first.join()
    assert order == ["a:in", "other:in", "other:out", "a:out", "b:in", "b:out"]


def test_a_turn_that_raises_releases_the_lock(make_store):
    store = make_store()
    with pytest.raises(RuntimeError):
        with store.lock(CHAT_ID):
            raise RuntimeError("turn failed")
    done = threading.Event()
    threading.Thread(target=lambda: (store.lock(CHAT_ID).__enter__(), done.set()), daemon=True).start()
    assert done.wait(5)


def test_redis_turn_lock_is_hashed_expires_and_goes_away(redis_url, redis_client):
    store = RedisSessionStore(redis_url, lock_timeout_s=30)
    with store.lock(CHAT_ID):
        [key] = [k.decode() for k in redis_client.keys("*")]
        assert key == "debt-help:turn-lock:" + hashlib.sha256(CHAT_ID.encode()).hexdigest()
        assert 0 < redis_client.pttl(key) <= 30_000  # a dead holder's lock expires
    assert redis_client.keys("*") == []
    store.close()


def test_redis_turn_goes_ahead_when_the_lock_is_not_freed_in_time(redis_url, redis_client, caplog):
    holder = RedisSessionStore(redis_url)
    waiter = RedisSessionStore(redis_url, lock_wait_s=0.3)
    with holder.lock(CHAT_ID):
        started = time.monotonic()
        with waiter.lock(CHAT_ID):
            waited = time.monotonic() - started
    assert 0.15 < waited < 2  # (redis-py polls every 0.1 s)
    assert "event=turn_lock_timeout store=redis" in caplog.text
    holder.close()
    waiter.close()


RACER = """
import json, sys
from bot.dialogue import build_engine
engine = build_engine()  # the session store from the environment (REDIS_URL or SESSION_DB)
print("ready", flush=True)
for line in sys.stdin:
    conversation = line.strip()
    reply = engine.handle(conversation, sys.argv[1])
    print(json.dumps({"kind": reply.kind, "topic": reply.sources[0].id if reply.sources else None}), flush=True)
"""
# Each fills different slots: a turn that started from the old state would lose the other's.
RACING = ("我的花呗逾期三天了", "催收天天骂我")


@pytest.mark.parametrize("kind", ["redis", "sqlite"])
def test_two_bot_processes_serialise_one_conversations_turns(kind, tmp_path, request):
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "SESSION_DB")}
    if kind == "redis":
        env["REDIS_URL"] = request.getfixturevalue("redis_url")
        request.getfixturevalue("redis_client")  # empty database
        store = RedisSessionStore(env["REDIS_URL"])
    else:
        env["SESSION_DB"] = str(tmp_path / "sessions.sqlite3")
        store = SQLiteSessionStore(env["SESSION_DB"])
    procs = [subprocess.Popen([sys.executable, "-c", RACER, message], cwd=REPO, env=env, text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for message in RACING]
    try:
        for proc in procs:
            assert proc.stdout.readline().strip() == "ready", proc.stderr.read()[-3000:]
        for round_ in range(3):
            conversation = f"tg:race-{round_}"
            for proc in procs:  # both messages at the same moment
                proc.stdin.write(conversation + "\n")
                proc.stdin.flush()
            replies = [json.loads(proc.stdout.readline()) for proc in procs]
            state = store.load(conversation)
            assert state["slots"]["product"] == "花呗" and state["slots"]["overdue"] == "三天", state
            assert state["slots"]["abusive"] is True, state
            assert state["entry"] in [reply["topic"] for reply in replies] and state["entry"], (state, replies)
    finally:
        for proc in procs:
            proc.stdin.close()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        store.close()
    assert [proc.returncode for proc in procs] == [0, 0], [proc.stderr.read()[-2000:] for proc in procs]
