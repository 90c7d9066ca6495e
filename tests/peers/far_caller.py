"""A far-end peer that plays the exchange and a caller on one FXO trunk of the sim card.

Uses only the Python standard library and docs/sim-far-end.md, version 2 (helpers shared
with far_phone.py, beside it). Script, in ticks after the first block: caller ID
as DTMF from RING_AT, then ring the trunk with the cn cadence (1000 ms on,
4000 ms off) 500 ms after it; once the card goes off hook (answers), press '1'
after PRESS_AFTER ms, then send 1020 Hz; count the ms in which it hears the
agent's 587 Hz; TALK ms after first hearing it, hang up (battery drop for
800 ms); print one JSON line with what happened and exit after the card
releases the line.

The caller ID and the key are its own DTMF (70 ms on, 70 ms off), or, given
SAMPLES (a JSON file {"cid": [...], "press": [...]} of 16-bit linear samples at
8 kHz, made elsewhere: the tests give spandsp's), those samples.

Usage: far_caller.py SOCKET CHANNEL ANI [SAMPLES]
"""

from __future__ import annotations

import json
import math
import socket
import struct
import sys

from far_phone import (  # type: ignore[import-not-found]
    alaw_decode,
    alaw_encode,
    dtmf_samples,
    goertzel_power,
    recv_msg,
    send_msg,
)

RING_AT = 2000          # first DTMF caller ID digit; rings after the caller ID
PRESS_AFTER = 1500
TALK = 3000
RING_ON, RING_OFF, HOOK_OFF, HOOK_ON, BATTERY = 4, 5, 1, 2, 6


def tone(freq: float, start: int, n: int) -> list[int]:
    amp = 32768 * 10 ** ((-10 - 3.14) / 20)
    return [round(amp * math.sin(2 * math.pi * freq * (start + j) / 8000)) for j in range(n)]


def main() -> None:
    path, chan, ani = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    mtype, body = recv_msg(sock)
    hello = json.loads(body)
    assert mtype == 1 and hello["channels"][chan]["kind"] == "fxo"
    assert hello["version"] == 2
    send_msg(sock, 1, json.dumps({"version": 2, "claim": [chan], "spans": []}).encode())
    k = hello["k"]
    made: dict[str, list[int]] = {}
    if len(sys.argv) > 4:
        with open(sys.argv[4], encoding="ascii") as f:
            made = json.load(f)
    cid = "A" + ani + "C"
    cid_plan = [(RING_AT + i * 140, d) for i, d in enumerate(cid)]     # 70 ms on, 70 ms off
    cid_ms = len(made["cid"]) // 8 if "cid" in made else len(cid) * 140
    press_ms = len(made["press"]) // 8 if "press" in made else 80
    first_ring = RING_AT + cid_ms + 500
    answered = press_at = talk_from = heard_from = hangup_at = released = None
    heard_ms = 0
    window: list[int] = []      # the last 20 ms heard
    ringing = False
    first_tick = None
    seq = 0
    try:
        while True:
            mtype, body = recv_msg(sock)
            seq_in, tick0, ticks, _nchan, _nspan = struct.unpack(">IQHHH", body[:18])
            first_tick = tick0 if first_tick is None else first_tick
            octets = body[18:18 + ticks * 8]
            nev = struct.unpack(">H", body[18 + ticks * 8:20 + ticks * 8])[0]
            for i in range(nev):
                ch, typ, val, tk = struct.unpack(">HHiQ", body[20 + ticks * 8 + 16 * i:36 + ticks * 8 + 16 * i])
                rel = tk - first_tick
                if typ == HOOK_OFF and answered is None:
                    answered = rel
                    press_at = rel + PRESS_AFTER
                elif typ == HOOK_ON and answered is not None and hangup_at is not None:
                    released = rel
            out = bytearray()
            events = []
            for t in range(ticks):
                rel = tick0 - first_tick + t
                samples = [0] * 8
                if "cid" in made:
                    if RING_AT <= rel < RING_AT + cid_ms:
                        samples = made["cid"][(rel - RING_AT) * 8:(rel - RING_AT + 1) * 8]
                else:
                    for start, d in cid_plan:
                        if start <= rel < start + 70:
                            samples = dtmf_samples(d, 8, (rel - start) * 8)
                if answered is None and rel >= first_ring:
                    on = (rel - first_ring) % 5000 < 1000
                    if on != ringing:
                        ringing = on
                        events.append((chan, RING_ON if on else RING_OFF, int(on), tick0 + t))
                if answered is not None and ringing:
                    ringing = False
                if press_at is not None and press_at <= rel < press_at + press_ms:
                    if "press" in made:
                        samples = made["press"][(rel - press_at) * 8:(rel - press_at + 1) * 8]
                    else:
                        samples = dtmf_samples("1", 8, (rel - press_at) * 8)
                elif press_at is not None and rel >= press_at + press_ms + 80 and hangup_at is None:
                    talk_from = talk_from if talk_from is not None else rel
                    samples = tone(1020, (rel - talk_from) * 8, 8)
                if hangup_at is not None and rel == hangup_at:
                    events.append((chan, BATTERY, 0, tick0 + t))
                if hangup_at is not None and rel == hangup_at + 800:
                    events.append((chan, BATTERY, 1, tick0 + t))
                out += bytes(alaw_encode(s) for s in samples)
                window = (window + [alaw_decode(o) for o in octets[t * 8:(t + 1) * 8]])[-160:]
                agent = goertzel_power(window, 587)
                if talk_from is not None and hangup_at is None and len(window) == 160 and \
                        agent > 10 * (goertzel_power(window, 450) + goertzel_power(window, 1020)) and agent > 1e10:
                    heard_ms += 1
                    heard_from = heard_from if heard_from is not None else rel
                    if rel - heard_from >= TALK:
                        hangup_at = rel + 1
            body_out = struct.pack(">IQHHH", seq_in, tick0, ticks, 1, 0) + bytes(out) + struct.pack(">H", len(events))
            for ch, typ, val, tk in events:
                body_out += struct.pack(">HHiQ", ch, typ, val, tk)
            send_msg(sock, 2, body_out)
            seq += 1
            if released is not None or (hangup_at is not None and tick0 - first_tick > hangup_at + 2000):
                break
    except (EOFError, ConnectionError):
        pass
    print(json.dumps({"blocks": seq, "k": k, "answered": answered, "heard_agent_ms": heard_ms,
                      "hung_up": hangup_at, "released": released}))


if __name__ == "__main__":
    main()
