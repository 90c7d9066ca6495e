"""The panel's own database, PANEL_DIR/panel.db (SQLite, WAL): users, sessions and the audit log.

``users``
    name, role, agent number, argon2id hash (argon2-cffi defaults), must-change, disabled.
``sessions``
    one row per browser session. The cookie holds a random 256-bit id; the row is keyed by
    its SHA-256, so the database never holds a usable id. Times are panel-clock ms: the row
    decides the idle (15 min) and absolute (8 h) limits, whatever the cookie says.
``audit``
    insert-only: SQLite triggers abort every UPDATE and DELETE, and an INSERT (OR REPLACE) of an
    id that exists. Fields: time (panel clock, UTC ISO 8601 with ms), user, remote address,
    action, target, outcome, detail (JSON, with before/after for changes). Never a password,
    setup code, session id or token: the detail is scrubbed of keys that name one. Strings have
    control/bidi/NUL characters escaped and are cut to TEXT_MAX characters; refusals are kept
    REFUSALS_PER_MINUTE a minute per account (per address without one, an IPv6 one with its /64, and
    ALL_REFUSALS_PER_MINUTE over all addresses without one), the rest summed into ``refused_more`` rows
    (insert-only: written as the cap is passed and after the minute).

The panel is several threads of one process (and the console tool another process): each
call takes a pooled connection; SQLite's locking orders the writers.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import threading
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import Flask, current_app, has_request_context, request
from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from appliance.web import PanelError
from appliance.web.auth import ROLES
from appliance.web.clock import PanelClock, SystemClock, iso_ms
from appliance.web.peers import peer_group

BUSY_TIMEOUT_MS = 10_000
"""How long a write waits for another's lock (reads never wait: WAL readers do not block)."""
HASH_SLOTS = 2
"""At most this many password hashes (argon2id, 64 MiB each) at once, whatever the number of logins."""
HASH_WAIT_S = 10.0
"""How long a login waits for a hash slot before it is answered 503."""
PASSWORD_MIN = 12
NAME_MAX = 64
_AGENT_NUMBER = re.compile(r"[0-9]{1,16}")
FAILURE_WINDOW = timedelta(minutes=15)
FAILURE_BANNER = 20
"""This many failed logins for one account within FAILURE_WINDOW raise a banner for installers."""

metadata = MetaData()

users = Table(
    "users", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(NAME_MAX), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("agent", String(16), nullable=True),
    Column("password_hash", Text, nullable=False),
    Column("must_change", Boolean, nullable=False, default=False),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created", String(32), nullable=False),
)

sessions = Table(
    "sessions", metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("user_id", Integer, nullable=True, index=True),
    Column("created_ms", Integer, nullable=False),
    Column("seen_ms", Integer, nullable=False),
    Column("login_ms", Integer, nullable=True),
    Column("data", Text, nullable=False, default="{}"),
)

audit_log = Table(
    "audit", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("time", String(32), nullable=False),
    Column("user", String(NAME_MAX), nullable=True),
    Column("remote", String(64), nullable=True),
    Column("action", String(32), nullable=False, index=True),
    Column("target", Text, nullable=True),
    Column("outcome", String(16), nullable=False),
    Column("detail", Text, nullable=False, default="{}"),
)

_TRIGGERS = (
    "CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit "
    "BEGIN SELECT RAISE(ABORT, 'the audit log is insert-only'); END",
    "CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit "
    "BEGIN SELECT RAISE(ABORT, 'the audit log is insert-only'); END",
    # INSERT OR REPLACE deletes the old row without firing a delete trigger: refuse an insert whose id exists.
    "CREATE TRIGGER IF NOT EXISTS audit_no_replace BEFORE INSERT ON audit "
    "WHEN NEW.id IS NOT NULL AND EXISTS (SELECT 1 FROM audit WHERE id = NEW.id) "
    "BEGIN SELECT RAISE(ABORT, 'the audit log is insert-only'); END",
    # The purge of expired sessions and the cap on anonymous ones look rows up by time (made on older files too).
    "CREATE INDEX IF NOT EXISTS sessions_seen_ms ON sessions (seen_ms)",
    "CREATE INDEX IF NOT EXISTS sessions_created_ms ON sessions (created_ms)",
)

SQLITE_INT_MAX = 2**63 - 1
"""The largest SQLite INTEGER: an id or offset past it is none that exists (not an OverflowError)."""


def _fits(value: int) -> bool:
    return -SQLITE_INT_MAX - 1 <= value <= SQLITE_INT_MAX

# Keys never written into an audit detail, at any depth (their values are secrets).
_SECRET_WORDS = ("password", "secret", "token", "code", "session", "cookie", "hash")

TEXT_MAX = 200
"""An audit target or detail string is cut to this many characters (after escaping)."""
REFUSALS_PER_MINUTE = 10
"""Refusals kept per account (per remote address for requests without one) and clock minute; the first one past
it is written at once as a ``refused_more`` row (``more`` 1), the rest counted into one more ``refused_more``
row, written at the next audit row after the minute."""
ALL_REFUSALS_PER_MINUTE = 100
"""Refusals without an account kept in one clock minute over all addresses; past it, every such refusal is
counted into ``refused_more`` rows of everyone's (no user, no remote; detail ``scope: all``), so many addresses
do not multiply the rows. A signed-in account's refusals are kept to its own REFUSALS_PER_MINUTE only."""

_hasher = PasswordHasher()
_hash_slots = threading.BoundedSemaphore(HASH_SLOTS)
# Checked against when a login names no account, so a wrong name costs what a wrong password costs.
_DUMMY_HASH = _hasher.hash("not a password of anyone: timing filler")


class AccountError(ValueError):
    """A refused account change (bad name, short password, the last installer...): the message says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class PanelBusyError(PanelError):
    """Every password-hash slot stayed taken for HASH_WAIT_S: the request is answered 503, try again."""


@dataclass(frozen=True)
class User:
    """One row of ``users`` (without the hash), as Flask-Login's user object."""

    id: int
    name: str
    role: str
    agent: str | None
    must_change: bool
    disabled: bool

    is_authenticated = True
    is_anonymous = False

    @property
    def is_active(self) -> bool:
        return not self.disabled

    def get_id(self) -> str:
        return str(self.id)


# ---------------------------------------------------------------------------------------------------------------
# The database


class PanelDB:
    """panel.db of one panel directory, with the clock its times come from."""

    def __init__(self, panel_dir: Path, clock: PanelClock) -> None:
        self.panel_dir = panel_dir
        self.path = panel_dir / "panel.db"
        self.clock = clock
        # 0600 before SQLite opens it: its -wal and -shm files take the database's mode when it makes them
        # (they hold the same rows), so none is ever readable by others, whatever the umask.
        os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        for path in (self.path, self.path.with_name("panel.db-wal"), self.path.with_name("panel.db-shm")):
            with contextlib.suppress(FileNotFoundError):
                os.chmod(path, 0o600)
        self.engine = _engine(self.path)
        self.refusals: dict[tuple[str, str], _Refusals] = {}
        self.refusals_lock = threading.Lock()
        with self.engine.begin() as conn:
            metadata.create_all(conn)
            for sql in _TRIGGERS:
                conn.exec_driver_sql(sql)

    def read(self) -> Connection:
        """A connection for reads only: its transaction is a snapshot that takes no write lock."""
        return self.engine.connect().execution_options(**{_READ_ONLY: True})

    def now(self) -> datetime:
        return self.clock.now()

    def now_ms(self) -> int:
        return int(self.clock.now().timestamp() * 1000)


_READ_ONLY = "cicbox_read_only"


def _engine(path: Path) -> Engine:
    engine = create_engine(f"sqlite:///{path}")

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        dbapi_conn.create_function(PEER_GROUP_SQL, 1, _peer_group_sql, deterministic=True)
        cur = dbapi_conn.cursor()
        try:
            cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
        finally:
            cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        # A write takes the lock at its start (a deferred one could not upgrade after another's commit);
        # a read (PanelDB.read) reads a snapshot and neither waits for nor holds up a writer.
        conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(_READ_ONLY) else "BEGIN IMMEDIATE")

    return engine


PEER_GROUP_SQL = "cicbox_peer_group"
"""The SQL function, on every panel.db connection, that is :func:`appliance.web.peers.peer_group` (NULL stays NULL)."""


def _peer_group_sql(address: str | None) -> str | None:
    return peer_group(address) if isinstance(address, str) else None


def peer_group_of(column: Any) -> Any:
    """The SQL expression of `column`'s peer group (an audit row's ``remote``, grouped as the caps group it)."""
    return getattr(func, PEER_GROUP_SQL)(column)


_dbs: dict[Path, PanelDB] = {}
_dbs_lock = threading.Lock()


def open_db(panel_dir: Path, clock: PanelClock | None = None) -> PanelDB:
    """The PanelDB of `panel_dir` (created with its tables on first use); one per directory and process."""
    key = panel_dir.resolve()
    with _dbs_lock:
        db = _dbs.get(key)
        if db is None or not db.path.exists():
            key.mkdir(mode=0o700, parents=True, exist_ok=True)
            db = PanelDB(key, clock or SystemClock())
            _dbs[key] = db
        elif clock is not None:
            db.clock = clock
        return db


def db_of(app_or_dir: Flask | Path | str | None = None) -> PanelDB:
    """The PanelDB of an app (default the current one) or of a panel directory."""
    if isinstance(app_or_dir, Path | str):
        return open_db(Path(app_or_dir))
    app = app_or_dir or current_app
    db = app.extensions.get("cicbox_panel_db")
    if db is None:
        from appliance.web.clock import panel_clock

        db = open_db(Path(app.config["PANEL_DIR"]), panel_clock(app))
        app.extensions["cicbox_panel_db"] = db
    return db


# ---------------------------------------------------------------------------------------------------------------
# Audit


def scrub(detail: Any) -> Any:
    """`detail` without any key that names a secret (password, code, token, session, ...), at any depth."""
    if isinstance(detail, Mapping):
        return {str(k): scrub(v) for k, v in detail.items()
                if not any(word in str(k).lower() for word in _SECRET_WORDS)}
    if isinstance(detail, list | tuple):
        return [scrub(v) for v in detail]
    return detail


def clean_text(text: str) -> str:
    """`text` fit for the audit log: control, bidi, NUL and other invisible characters escaped (``\\u202e``),
    then cut to TEXT_MAX characters (marked with how many more there were)."""
    out = "".join(ch.encode("unicode_escape").decode("ascii") if _unsafe_char(ch) or ch == "\\" else ch
                  for ch in text)
    if len(out) > TEXT_MAX:
        out = f"{out[:TEXT_MAX]}...(+{len(out) - TEXT_MAX} characters)"
    return out


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, Mapping):
        return {clean_text(str(k)): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


@dataclass
class _Refusals:
    """One remote address's (or one account's, or everyone's) refusals in one clock minute."""

    minute: datetime
    kept: int = 0
    reported: bool = False               # the first refusal past the cap is written at once, as a summary
    more: dict[str, int] | None = None   # counted since, written when the minute is over


def _summary(now: datetime, key: tuple[str, str], minute: datetime, actions: Mapping[str, int]) -> dict[str, Any]:
    n = sum(actions.values())
    kind, who = key
    detail: dict[str, Any] = {"more": n, "summary": f"{n} more refused", "actions": dict(actions),
                              "from": iso_ms(minute), "to": iso_ms(minute + timedelta(minutes=1))}
    if kind == "all":
        detail["scope"] = "all"
    return {"time": iso_ms(now), "user": who if kind == "user" else None, "remote": who if kind == "remote" else None,
            "action": "refused_more", "target": None, "outcome": "refused",
            "detail": json.dumps(detail, sort_keys=True, separators=(",", ":"))}


_ALL = ("all", "")


def _refusal_rows(db: PanelDB, now: datetime, user: str | None, remote: str | None, refusal: bool,
                  action: str) -> tuple[bool, list[dict[str, Any]]]:
    """(whether to write this row, the ``refused_more`` rows to write with it)."""
    minute = now.replace(second=0, microsecond=0)
    summaries: list[dict[str, Any]] = []
    with db.refusals_lock:
        for ended, seen in list(db.refusals.items()):
            if seen.minute < minute:
                del db.refusals[ended]
                if seen.more:
                    summaries.append(_summary(now, ended, seen.minute, seen.more))
        key: tuple[str, str] | None = (("user", user) if user is not None
                                       else ("remote", peer_group(remote)) if remote is not None else None)
        if not refusal or key is None:
            return True, summaries
        seen = db.refusals.setdefault(key, _Refusals(minute))
        # Only the addresses without an account share the budget for all: anonymous noise from many addresses
        # never hides a signed-in account's refusals (accounts are few, each kept to its own ten).
        everyone = db.refusals.setdefault(_ALL, _Refusals(minute)) if key[0] == "remote" else _Refusals(minute)
        if seen.kept < REFUSALS_PER_MINUTE and everyone.kept < ALL_REFUSALS_PER_MINUTE:
            seen.kept += 1
            everyone.kept += 1
            return True, summaries
        if everyone.kept >= ALL_REFUSALS_PER_MINUTE:      # so many addresses: one summary for all of them
            key, seen = _ALL, everyone
        if not seen.reported:                              # written now: a killed panel loses no more than this
            seen.reported = True                           # minute's count after it
            if seen is not everyone:
                everyone.kept += 1
            summaries.append(_summary(now, key, minute, {action: 1}))
        else:
            seen.more = seen.more or {}
            seen.more[action] = seen.more.get(action, 0) + 1
        return False, summaries


def audit(app_or_dir: Flask | Path | str | None = None, *, user: str | None, remote: str | None, action: str,
          target: str | None = None, outcome: str = "ok", detail: Mapping[str, Any] | None = None) -> None:
    """Append one row to the audit log (never a secret: see :func:`scrub`; strings cleaned: :func:`clean_text`).

    Refusals (outcome ``refused``) are kept REFUSALS_PER_MINUTE a minute per account (or, without one, per
    remote address, and ALL_REFUSALS_PER_MINUTE a minute over all such addresses); the rest are summed into
    ``refused_more`` rows: one as soon as the cap is passed, one with the rest of the minute's count after it."""
    db = db_of(app_or_dir)
    now = db.now()
    write, rows = _refusal_rows(db, now, user, remote, outcome == "refused", action)
    if write:
        text = json.dumps(_clean(scrub(dict(detail or {}))), sort_keys=True, separators=(",", ":"), default=str)
        rows.append({"time": iso_ms(now), "user": user, "remote": remote, "action": action,
                     "target": clean_text(target) if target is not None else None, "outcome": outcome,
                     "detail": text})
    if not rows:
        return
    with db.engine.begin() as conn:
        conn.execute(insert(audit_log), rows)


def request_user_name() -> str | None:
    """The signed-in account's name in this request, or None."""
    from flask_login import current_user

    if not has_request_context():
        return None
    return current_user.name if getattr(current_user, "is_authenticated", False) else None


def audit_request(action: str, *, target: str | None = None, outcome: str = "ok",
                  detail: Mapping[str, Any] | None = None, user: str | None = None) -> None:
    """Audit an action of the current request: its account (or `user`) and its TCP peer."""
    audit(current_app, user=user if user is not None else request_user_name(), remote=request.remote_addr,
          action=action, target=target, outcome=outcome, detail=detail)


def audit_rows(app_or_dir: Flask | Path | str | None = None, *, user: str | None = None,
               action: str | None = None, outcome: str | None = None, limit: int = 50,
               offset: int = 0) -> list[dict[str, Any]]:
    """Audit rows newest first, filtered by exact user/action/outcome, `limit` from `offset`."""
    db = db_of(app_or_dir)
    if not (_fits(limit) and _fits(offset)):
        return []
    q = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit).offset(offset)
    if user:
        q = q.where(audit_log.c.user == user)
    if action:
        q = q.where(audit_log.c.action == action)
    if outcome:
        q = q.where(audit_log.c.outcome == outcome)
    with db.read() as conn:
        rows = conn.execute(q).mappings().all()
    return [{**row, "detail": json.loads(row["detail"])} for row in rows]


def failure_banner(app: Flask | None = None) -> list[tuple[str, int]]:
    """(account, failures) for every account with FAILURE_BANNER failed logins in the last 15 minutes."""
    db = db_of(app)
    since = iso_ms(db.now() - FAILURE_WINDOW)
    q = (select(audit_log.c.target, func.count())
         .where(audit_log.c.action == "login", audit_log.c.outcome == "failure", audit_log.c.time >= since,
                audit_log.c.target.is_not(None))
         .group_by(audit_log.c.target).having(func.count() >= FAILURE_BANNER))
    with db.read() as conn:
        return [(str(t), int(n)) for t, n in conn.execute(q).all()]


# ---------------------------------------------------------------------------------------------------------------
# Users


@contextlib.contextmanager
def _hash_slot() -> Iterator[None]:
    """One of HASH_SLOTS, waited for at most HASH_WAIT_S (else PanelBusyError)."""
    if not _hash_slots.acquire(timeout=HASH_WAIT_S):
        raise PanelBusyError("the panel is busy checking other passwords: try again in a few seconds")
    try:
        yield
    finally:
        _hash_slots.release()


def hash_password(password: str) -> str:
    """An argon2id hash of `password` with argon2-cffi's defaults."""
    with _hash_slot():
        return _hasher.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    """Whether `password` matches `stored_hash` (the one place a password is checked)."""
    with _hash_slot():
        try:
            return _hasher.verify(stored_hash, password)
        except (VerificationError, InvalidHashError):
            return False


def _unsafe_char(ch: str) -> bool:
    """Control, format (bidi marks, zero-width), separator-but-space, surrogate or unassigned characters."""
    cat = unicodedata.category(ch)
    return cat[0] == "C" or cat in {"Zl", "Zp"}


def check_name(name: str) -> str:
    """A valid account name (1-64 printable characters without spaces at the ends), or AccountError."""
    if not isinstance(name, str) or not name.strip():
        raise AccountError("a user name is needed")
    if "\ufffd" in name:
        raise AccountError("the user name is not valid UTF-8 text")
    if any(_unsafe_char(ch) for ch in name):
        raise AccountError("a user name may not hold control, bidi or other invisible characters")
    if name != name.strip():
        raise AccountError("a user name may not start or end with a space")
    if len(name) > NAME_MAX:
        raise AccountError(f"a user name has at most {NAME_MAX} characters")
    if not name.isprintable():
        raise AccountError("a user name has only printable characters")
    return name


def check_password(name: str, password: str, confirm: str | None = None) -> None:
    """AccountError unless `password` is 12+ characters without control characters, not the name, and equal to
    `confirm` (when given). Every way a password is set (setup, change, create, reset) comes here."""
    if confirm is not None and password != confirm:
        raise AccountError("the two passwords differ")
    if len(password) < PASSWORD_MIN:
        raise AccountError(f"a password has at least {PASSWORD_MIN} characters")
    if not password.strip():
        raise AccountError("a password may not be only spaces")
    if any(unicodedata.category(ch) == "Cc" for ch in password):
        raise AccountError("a password may not hold control characters (NUL, tab, newline, ...)")
    typed, own = password.strip().casefold(), name.strip().casefold()
    if own and len(typed) % len(own) == 0 and typed == own * (len(typed) // len(own)):
        raise AccountError("the password may not be the user name (or the name repeated)")


def check_role(role: str) -> str:
    if role not in ROLES:
        raise AccountError(f"unknown role {role!r}; the roles are {', '.join(ROLES)}")
    return role


def check_agent(role: str, agent: str | None) -> str | None:
    """The agent number to store: digits, and required for the agent role."""
    agent = (agent or "").strip() or None
    if agent is not None and not _AGENT_NUMBER.fullmatch(agent):
        raise AccountError("an agent number is 1 to 16 digits")
    if role == "agent" and agent is None:
        raise AccountError("an account with the agent role needs its agent number")
    return agent


def _agent_taken(conn: Connection, agent: str | None, user_id: int | None = None) -> None:
    """AccountError if another account (not `user_id`) has agent number `agent`."""
    if agent is None:
        return
    q = select(users.c.name).where(users.c.agent == agent)
    if user_id is not None:
        q = q.where(users.c.id != user_id)
    other = conn.execute(q.limit(1)).first()
    if other is not None:
        raise AccountError(f"agent number {agent} is {other.name}'s already")


def _user(row: Any) -> User:
    return User(id=row.id, name=row.name, role=row.role, agent=row.agent, must_change=bool(row.must_change),
                disabled=bool(row.disabled))


def _fold(name: str) -> str:
    """What a name looks like to a reader: compatibility forms (full-width, ligatures) and case folded."""
    return unicodedata.normalize("NFKC", name).casefold()


def _look_alike(conn: Connection, name: str) -> None:
    """AccountError if an account's name reads the same as `name` (``SUP1``, its full-width form and
    ``sup1``): the audit log and the user list must tell accounts apart."""
    folded = _fold(name)
    for (other,) in conn.execute(select(users.c.name)):
        if _fold(other) == folded:
            if other == name:
                raise AccountError(f"a user named {name!r} exists already")
            raise AccountError(f"a user named {other!r} exists already, and {name!r} would read the same: "
                               "choose a name that differs in more than case or width")


def create_user(app_or_dir: Flask | Path | str | None, name: str, role: str, password: str, *,
                agent: str | None = None, must_change: bool = False) -> User:
    """Add an account; AccountError if the name is taken or a field is invalid."""
    db = db_of(app_or_dir)
    check_name(name)
    check_role(role)
    agent = check_agent(role, agent)
    check_password(name, password)
    hashed = hash_password(password)          # before the write lock: a hash takes a while, and may wait a slot
    try:
        with db.engine.begin() as conn:
            _agent_taken(conn, agent)
            _look_alike(conn, name)
            result = conn.execute(insert(users).values(
                name=name, role=role, agent=agent, password_hash=hashed, must_change=must_change,
                disabled=False, created=iso_ms(db.now())))
    except IntegrityError:
        raise AccountError(f"a user named {name!r} exists already") from None
    key = result.inserted_primary_key
    assert key is not None
    return User(id=int(key[0]), name=name, role=role, agent=agent, must_change=must_change, disabled=False)


def get_user(app_or_dir: Flask | Path | str | None, *, user_id: int | None = None,
             name: str | None = None) -> User | None:
    db = db_of(app_or_dir)
    if user_id is not None and not _fits(user_id):
        return None
    q = select(users)
    q = q.where(users.c.id == user_id) if user_id is not None else q.where(users.c.name == name)
    with db.read() as conn:
        row = conn.execute(q).first()
    return _user(row) if row is not None else None


def list_users(app_or_dir: Flask | Path | str | None = None) -> list[User]:
    db = db_of(app_or_dir)
    with db.read() as conn:
        return [_user(r) for r in conn.execute(select(users).order_by(users.c.name)).all()]


def installer_exists(app_or_dir: Flask | Path | str | None = None) -> bool:
    """Whether any installer account exists (disabled or not): the end of the first run."""
    db = db_of(app_or_dir)
    with db.read() as conn:
        return conn.execute(select(users.c.id).where(users.c.role == "installer").limit(1)).first() is not None


def authenticate(app: Flask | None, name: str, password: str) -> User | None:
    """The account if `name` exists, is enabled and `password` is its password; else None."""
    db = db_of(app)
    with db.read() as conn:
        row = conn.execute(select(users).where(users.c.name == name)).first()
    ok = verify_password(row.password_hash if row is not None else _DUMMY_HASH, password)
    if row is None or not ok or row.disabled:
        return None
    return _user(row)


def _active_installers(conn: Connection) -> int:
    q = select(func.count()).select_from(users).where(users.c.role == "installer", users.c.disabled.is_(False))
    return int(conn.execute(q).scalar_one())


def update_user(app_or_dir: Flask | Path | str | None, user_id: int, *, role: str | None = None,
                agent: str | None = None, disabled: bool | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Change an account's role, agent number or disabled flag; return (before, after).

    The last enabled installer can be neither demoted nor disabled (AccountError). Disabling ends the
    account's sessions."""
    db = db_of(app_or_dir)
    if not _fits(user_id):
        raise AccountError(f"no user with id {user_id}")
    with db.engine.begin() as conn:
        row = conn.execute(select(users).where(users.c.id == user_id)).first()
        if row is None:
            raise AccountError(f"no user with id {user_id}")
        new_role = check_role(role) if role is not None else row.role
        new_agent = check_agent(new_role, agent if agent is not None else row.agent)
        if new_agent != row.agent:
            _agent_taken(conn, new_agent, user_id)
        new_disabled = bool(disabled) if disabled is not None else bool(row.disabled)
        before = {"role": row.role, "agent": row.agent, "disabled": bool(row.disabled)}
        after = {"role": new_role, "agent": new_agent, "disabled": new_disabled}
        leaves = row.role == "installer" and not row.disabled and (new_role != "installer" or new_disabled)
        if leaves and _active_installers(conn) <= 1:
            raise AccountError(f"{row.name} is the last installer: make another installer first")
        conn.execute(update(users).where(users.c.id == user_id).values(
            role=new_role, agent=new_agent, disabled=new_disabled))
        if new_disabled:
            conn.execute(delete(sessions).where(sessions.c.user_id == user_id))
    return before, after


def set_password(app_or_dir: Flask | Path | str | None, user_id: int, password: str, *, must_change: bool,
                 keep_session: str | None = None) -> None:
    """Set an account's password (and must-change flag); end its sessions but `keep_session` (an id hash)."""
    db = db_of(app_or_dir)
    if not _fits(user_id):
        raise AccountError(f"no user with id {user_id}")
    with db.read() as conn:
        row = conn.execute(select(users.c.name).where(users.c.id == user_id)).first()
    if row is None:
        raise AccountError(f"no user with id {user_id}")
    check_password(row.name, password)
    hashed = hash_password(password)          # before the write lock (see create_user)
    with db.engine.begin() as conn:
        done = conn.execute(update(users).where(users.c.id == user_id).values(
            password_hash=hashed, must_change=must_change))
        if done.rowcount != 1:
            raise AccountError(f"no user with id {user_id}")
        q = delete(sessions).where(sessions.c.user_id == user_id)
        if keep_session is not None:
            q = q.where(sessions.c.id_hash != keep_session)
        conn.execute(q)


# ---------------------------------------------------------------------------------------------------------------
# Sessions (the rows; appliance.web.sessions is the Flask side)


def session_hash(sid: str) -> str:
    """The key of a session row: SHA-256 of the cookie's id (the id itself is never stored)."""
    return hashlib.sha256(sid.encode()).hexdigest()


def login_is_fresh(app: Flask | None = None) -> bool:
    """Whether the current session's password was typed within the last FRESH_S seconds."""
    from flask import session

    from appliance.web.auth import FRESH_S

    login_ms = getattr(session, "login_ms", None)
    if login_ms is None:
        return False
    return db_of(app).now_ms() - int(login_ms) <= FRESH_S * 1000
