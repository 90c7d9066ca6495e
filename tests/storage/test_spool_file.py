"""The spool file on its own (appliance.storage.spool): records read back in order after a
reopen, a torn header write leaves the previous header in force, a full spool refuses an
append and writes nothing, and emptying it starts a new generation of the same size."""

from __future__ import annotations

from pathlib import Path

from appliance.storage.cdr import Record
from appliance.storage.spool import MIN_SPOOL_BYTES, Spool
from tests.storage import make_cdr, make_event

HEADER_SLOTS = (0, 512)     # the layout in the spool module's docstring: two header slots
DATA = 4096                 # and the records from here


def reopen(path: Path, size: int = MIN_SPOOL_BYTES) -> tuple[Spool, list[Record]]:
    s = Spool(path, size)
    return s, list(s.open())


def test_records_are_read_back_in_order_after_a_reopen(tmp_path: Path) -> None:
    path = tmp_path / "records.spool"
    s, first = reopen(path)
    assert first == []
    batches: list[list[Record]] = [[make_cdr("a"), make_event("a")], [make_cdr("b")],
                                   [make_cdr("c", ani=None), make_event("c")]]
    for b in batches:
        assert s.append(b)
    token = s.token
    s.close()
    assert path.stat().st_size == MIN_SPOOL_BYTES

    s2, back = reopen(path)
    try:
        assert back == [r for b in batches for r in b]
        assert s2.records_token == token and s2.damaged is None
    finally:
        s2.close()


def test_a_torn_header_write_leaves_the_previous_header_in_force(tmp_path: Path) -> None:
    path = tmp_path / "records.spool"
    s, _ = reopen(path)
    assert s.append([make_cdr("a")])
    s.close()
    # The header that counts record "a" is the newer of the two slots; a second append tears it.
    s, _ = reopen(path)
    assert s.append([make_cdr("b")])
    s.close()
    raw = bytearray(path.read_bytes())
    newest = max(HEADER_SLOTS, key=lambda off: int.from_bytes(raw[off + 28:off + 36], "little"))
    raw[newest + 44] ^= 0xFF                       # a byte of the newest header's record count
    path.write_bytes(bytes(raw))

    s2, back = reopen(path)
    try:
        assert back == [make_cdr("a")]             # the older header: one record, no damage
        assert s2.damaged is None
    finally:
        s2.close()


def test_a_full_spool_refuses_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "records.spool"
    s, _ = reopen(path)
    try:
        assert s.append([make_cdr("first")])
        before = path.read_bytes()
        big = [make_cdr(f"r{i:04d}", trunk="t" * 60) for i in range((MIN_SPOOL_BYTES - DATA) // 100)]
        assert s.append(big) is False
        assert path.read_bytes() == before
    finally:
        s.close()
    s2, back = reopen(path)
    s2.close()
    assert back == [make_cdr("first")]


def test_emptying_starts_a_new_generation_of_the_same_size(tmp_path: Path) -> None:
    path = tmp_path / "records.spool"
    s, _ = reopen(path)
    assert s.append([make_cdr("a"), make_cdr("b")])
    old = s.token
    s.reset()
    assert s.append([make_cdr("c")])
    s.close()
    assert path.stat().st_size == MIN_SPOOL_BYTES
    s2, back = reopen(path)
    s2.close()
    assert back == [make_cdr("c")]
    assert s2.records_token != old
