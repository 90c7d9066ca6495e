"""Numbered configuration versions under the state directory; the engine is their only writer.

``STATE_DIR/config/0001.yaml`` holds a version's text exactly as applied, and
``0001.json`` its record (author, base version, engine tick, sha256, status).
``current`` names the version in force; it is replaced atomically (temporary
file, fsync, rename), so a power cut leaves either the old or the new pointer.
Nothing stored is ever deleted or overwritten: a version whose switch failed
stays on disk, marked ``failed``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from appliance.config.loader import parse_config
from appliance.config.model import SiteConfig
from appliance.errors import ApplyError


@dataclass(frozen=True)
class VersionInfo:
    version: int
    author: str
    base_version: int | None
    applied_at_tick: int
    sha256: str
    status: str            # "in force", "superseded", "failed: <reason>"


@dataclass(frozen=True)
class StoredConfig:
    version: int
    text: str
    filename: str
    config: SiteConfig
    author: str
    base_version: int | None


#: the first line `cicbox config get` writes before a document: the version it is based on
HEADER = "# cicbox config version {version}: `cicbox config apply` sends this number as the base\n"
HEADER_RE = re.compile(r"\A\ufeff?# cicbox config version (\d+)\b")


def without_header(text: str) -> str:
    """`text` without the header line it was applied with, if it has one."""
    if HEADER_RE.match(text):
        return text.split("\n", 1)[1] if "\n" in text else ""
    return text


@dataclass
class Prepared:
    """A version stored and validated but not yet in force."""

    version: int
    config: SiteConfig
    text: str
    author: str
    previous: int | None
    meta: dict[str, object]


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


class ConfigStore:
    """The versions of one site's configuration."""

    def __init__(self, state_dir: Path, *, create: bool = True) -> None:
        """The store under `state_dir`, its directory made unless `create` is False (a reader such as the
        panel, whose view of the state directory is read-only: no directory is then a store with no version)."""
        self.dir = state_dir / "config"
        if create:
            self.dir.mkdir(parents=True, exist_ok=True)

    def _meta(self, version: int) -> dict[str, object]:
        meta: dict[str, object] = json.loads((self.dir / f"{version:04d}.json").read_text())
        return meta

    def _current_version(self) -> int | None:
        p = self.dir / "current"
        if not p.exists():
            return None
        return int(p.read_text().strip())

    def current(self) -> StoredConfig | None:
        v = self._current_version()
        return None if v is None else self.get(v)

    def get(self, version: int) -> StoredConfig:
        text = (self.dir / f"{version:04d}.yaml").read_text(encoding="utf-8")
        meta = self._meta(version)
        filename = str(meta.get("filename", f"{version:04d}.yaml"))
        base = meta.get("base_version")
        return StoredConfig(version, text, filename, parse_config(text, filename), str(meta["author"]),
                            int(base) if isinstance(base, int) else None)

    def history(self) -> list[VersionInfo]:
        out = []
        cur = self._current_version()
        nxt = self.dir / "next"
        waiting = nxt.read_text().strip() if nxt.exists() else ""
        for p in sorted(self.dir.glob("[0-9][0-9][0-9][0-9].json")):
            m = json.loads(p.read_text())
            v = int(m["version"])
            status = str(m.get("status", "ok"))
            if status in ("ok", "pending") and v == cur:
                status = "in force"
            elif status == "ok":
                status = "superseded"
            elif status.startswith("waiting for a restart") and str(v) != waiting:
                status = "superseded before a restart"
            elif status == "pending":
                status = "never in force (the engine stopped before switching)"
            base = m.get("base_version")
            out.append(VersionInfo(v, str(m["author"]), base if isinstance(base, int) else None,
                                   int(m["applied_at_tick"]), str(m["sha256"]), status))
        return out

    def _next_version(self) -> int:
        versions = [int(p.stem) for p in self.dir.glob("[0-9][0-9][0-9][0-9].yaml")]
        return max(versions, default=0) + 1

    def document(self) -> tuple[int, str, str] | None:
        """The version in force as (version, text, author), without parsing it."""
        v = self._current_version()
        if v is None:
            return None
        return v, (self.dir / f"{v:04d}.yaml").read_text(encoding="utf-8"), str(self._meta(v)["author"])

    def prepare(self, text: str, filename: str, author: str, base_version: int | None,
                tick: int) -> Prepared:
        """Validate and store `text` as the next version, not yet in force (status "pending").

        ConfigError: nothing stored. ApplyError: the document is based on a version that is no
        longer current (an edit made meanwhile would be lost), nothing stored."""
        cfg = parse_config(text, filename)
        cur = self._current_version()
        if cur is not None and base_version != cur:
            based = "no version" if base_version is None else f"version {base_version}"
            raise ApplyError(f"based on {based}; version {cur} is current: fetch it with "
                             "`cicbox config get`, make the change again and apply")
        version = self._next_version()
        meta: dict[str, object] = {
            "version": version, "author": author, "base_version": base_version, "applied_at_tick": tick,
            "sha256": hashlib.sha256(text.encode()).hexdigest(), "filename": filename, "status": "pending"}
        _write_atomic(self.dir / f"{version:04d}.yaml", text.encode("utf-8"))
        _write_atomic(self.dir / f"{version:04d}.json", json.dumps(meta).encode())
        return Prepared(version, cfg, text, author, cur, meta)

    def commit(self, p: Prepared) -> None:
        """`p` was switched to: it is the version in force from now on, also after a restart."""
        _write_atomic(self.dir / "current", f"{p.version}\n".encode())   # the pointer first: it decides
        (self.dir / "next").unlink(missing_ok=True)       # a version waiting for a restart is superseded
        p.meta["status"] = "ok"
        _write_atomic(self.dir / f"{p.version:04d}.json", json.dumps(p.meta).encode())

    def defer(self, p: Prepared, reason: str) -> None:
        """`p` needs a restart: it stays stored, and the next start puts it in force (``next``)."""
        p.meta["status"] = f"waiting for a restart: {reason}"
        _write_atomic(self.dir / f"{p.version:04d}.json", json.dumps(p.meta).encode())
        _write_atomic(self.dir / "next", f"{p.version}\n".encode())

    def take_next(self) -> int | None:
        """At start: put in force the version that waits for a restart, if it was based on the
        version in force (a later apply superseded it otherwise). Returns it, or None."""
        path = self.dir / "next"
        if not path.exists():
            return None
        try:
            version = int(path.read_text().strip())
            meta = self._meta(version)
        except (ValueError, OSError):
            version, meta = 0, {}
        cur = self._current_version()
        taken = None
        if meta and meta.get("base_version") == cur:
            _write_atomic(self.dir / "current", f"{version}\n".encode())
            meta["status"] = "ok"
            _write_atomic(self.dir / f"{version:04d}.json", json.dumps(meta).encode())
            taken = version
        path.unlink()
        return taken

    def fail(self, p: Prepared, reason: str) -> ApplyError:
        """`p` could not be put in force: it stays on disk marked failed; the old version stays."""
        p.meta["status"] = f"failed: {reason}"
        _write_atomic(self.dir / f"{p.version:04d}.json", json.dumps(p.meta).encode())
        return ApplyError(f"version {p.version} could not be put in force, version {p.previous} stays: {reason}")

    def apply(self, text: str, filename: str, author: str, base_version: int | None,
              switch: Callable[[SiteConfig, int], None], tick: int) -> int:
        """Validate, store, switch in one go (start-up and tools; the running engine uses
        prepare/commit on its worker); on a failed switch keep the old version and raise ApplyError."""
        p = self.prepare(text, filename, author, base_version, tick)
        try:
            switch(p.config, p.version)
        except Exception as exc:
            raise self.fail(p, str(exc)) from exc
        self.commit(p)
        return p.version

    def bootstrap(self, template: Path, author: str = "installer") -> int | None:
        """Store `template` as version 1 if there is no version yet."""
        if self._current_version() is not None:
            return None
        text = template.read_text(encoding="utf-8")
        return self.apply(text, str(template), author, None, lambda cfg, v: None, 0)
