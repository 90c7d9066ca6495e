"""A far-end peer that plays a phone on one FXS port of the sim card.

Uses only the Python standard library and docs/sim-far-end.md (version 2: it claims
one port and no span, so its BLOCKs carry no span lines). Script (ticks
after the first block): go off hook at OFFHOOK; listen to the line and measure
the strongest tone; from DIAL on, send DTMF digits (our own generator, 70 ms on,
80 ms off, -6 dBm0 per tone); go on hook at ONHOOK; print one JSON line with
what it heard, then exit.

Usage: far_phone.py SOCKET CHANNEL DIGITS [--bad KIND] [--samples FILE]
  --bad seq|tick|type|length|event  sends one malformed answer after going off hook
  --samples FILE  dials with these samples instead of its own DTMF: a JSON file {"digits": [...]}
                  of 16-bit linear samples at 8 kHz made elsewhere (the tests give spandsp's DIGITS)
"""

from __future__ import annotations

import json
import math
import socket
import struct
import sys

OFFHOOK = 20
DIAL = 400
ONHOOK_AFTER_DIGITS = 300
TONE_MS, GAP_MS = 70, 80
DTMF_ROWS = (697, 770, 852, 941)
DTMF_COLS = (1209, 1336, 1477, 1633)
KEYS = "123A456B789C*0#D"


def alaw_decode(a: int) -> int:
    a ^= 0x55
    t = (a & 0x0F) << 4
    seg = (a & 0x70) >> 4
    if seg == 0:
        t += 8
    elif seg == 1:
        t += 0x108
    else:
        t = (t + 0x108) << (seg - 1)
    return t if a & 0x80 else -t


def alaw_encode(x: int) -> int:
    if x >= 0:
        mask = 0xD5
    else:
        mask = 0x55
        x = -x - 1
    x = min(x, 32767)
    seg = 0
    v = x >> 8
    while v:
        seg += 1
        v >>= 1
    if seg >= 8:
        return 0x7F ^ mask
    q = (x >> 4) & 0x0F if seg == 0 else (x >> (seg + 3)) & 0x0F
    return ((seg << 4) | q) ^ mask


def recv_exact(sock: socket.socket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise EOFError
        out += chunk
    return out


def recv_msg(sock: socket.socket) -> tuple[int, bytes]:
    length, mtype = struct.unpack(">IB", recv_exact(sock, 5))
    return mtype, recv_exact(sock, length - 1)


def send_msg(sock: socket.socket, mtype: int, body: bytes) -> None:
    sock.sendall(struct.pack(">IB", len(body) + 1, mtype) + body)


def goertzel_power(samples: list[int], freq: float) -> float:
    w = 2 * math.pi * freq / 8000
    c = 2 * math.cos(w)
    s1 = s2 = 0.0
    for x in samples:
        s1, s2 = x + c * s1 - s2, s1
    return s1 * s1 + s2 * s2 - c * s1 * s2


def dtmf_samples(key: str, n: int, start: int) -> list[int]:
    i = KEYS.index(key)
    f1, f2 = DTMF_ROWS[i // 4], DTMF_COLS[i % 4]
    amp = 32768 * 10 ** ((-6 - 3.14) / 20)
    return [round(amp * (math.sin(2 * math.pi * f1 * (start + j) / 8000)
                         + math.sin(2 * math.pi * f2 * (start + j) / 8000))) for j in range(n)]


def main() -> None:
    path, chan, digits = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    opts = dict(zip(sys.argv[4::2], sys.argv[5::2], strict=False))
    bad = opts.get("--bad")
    made: list[int] | None = None
    if "--samples" in opts:
        with open(opts["--samples"], encoding="ascii") as f:
            made = json.load(f)["digits"]
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    mtype, body = recv_msg(sock)
    hello = json.loads(body)
    assert mtype == 1 and hello["law"] == "alaw" and hello["version"] == 2
    send_msg(sock, 1, json.dumps({"version": 2, "claim": [chan], "spans": []}).encode())
    k = hello["k"]
    heard: list[int] = []  # samples received from the card, from OFFHOOK on
    plan: list[tuple[int, str]] = []  # (start tick offset, key)
    t = DIAL
    for key in digits:
        plan.append((t, key))
        t += TONE_MS + GAP_MS
    if made is not None:
        t = DIAL + len(made) // 8
    onhook = t + ONHOOK_AFTER_DIGITS
    seq_expected = 0
    first_tick = None
    sent_bad = False
    try:
        while True:
            mtype, body = recv_msg(sock)
            seq, tick0, ticks, nchan, nspan = struct.unpack(">IQHHH", body[:18])
            if first_tick is None:
                first_tick = tick0
            assert seq == seq_expected and ticks == k and nchan == 1 and nspan == 0
            seq_expected += 1
            octets = body[18:18 + ticks * 8]
            rel0 = tick0 - first_tick
            if rel0 >= OFFHOOK:
                heard.extend(alaw_decode(o) for o in octets)
            out = bytearray()
            events: list[tuple[int, int, int, int]] = []
            for tt in range(ticks):
                rel = rel0 + tt
                samples = [0] * 8
                if made is not None:
                    if DIAL <= rel < DIAL + len(made) // 8:
                        samples = made[(rel - DIAL) * 8:(rel - DIAL + 1) * 8]
                else:
                    for start, key in plan:
                        if start <= rel < start + TONE_MS:
                            samples = dtmf_samples(key, 8, (rel - start) * 8)
                out += bytes(alaw_encode(s) for s in samples)
                if rel == OFFHOOK:
                    events.append((chan, 1, 1, tick0 + tt))
                if rel == onhook:
                    events.append((chan, 2, 0, tick0 + tt))
            body_out = struct.pack(">IQHHH", seq, tick0, ticks, 1, 0) + bytes(out)
            if bad and not sent_bad and rel0 > OFFHOOK + 50:
                sent_bad = True
                if bad == "seq":
                    body_out = struct.pack(">IQHHH", seq + 7, tick0, ticks, 1, 0) + bytes(out)
                elif bad == "tick":
                    body_out = struct.pack(">IQHHH", seq, tick0 + 1, ticks, 1, 0) + bytes(out)
                elif bad == "length":
                    body_out = body_out[:-3]
                elif bad == "event":
                    events = [(chan + 1, 1, 1, tick0)]
                elif bad == "type":
                    send_msg(sock, 9, body_out + struct.pack(">H", 0))
                    continue
            body_out += struct.pack(">H", len(events))
            for ch, typ, val, tk in events:
                body_out += struct.pack(">HHiQ", ch, typ, val, tk)
            send_msg(sock, 2, body_out)
            if rel0 > onhook + 20:
                break
    except (EOFError, ConnectionError):
        pass
    # What did the phone hear between going off hook and the first digit?
    window = heard[100 * 8:(DIAL - OFFHOOK - 20) * 8]
    freqs = {f: goertzel_power(window, f) for f in range(300, 1000, 25)}
    peak = max(freqs, key=lambda f: freqs[f]) if window else 0
    rms = math.sqrt(sum(x * x for x in window) / len(window)) if window else 0.0
    level = 20 * math.log10(rms * math.sqrt(2) / 32768) + 3.14 if rms > 0 else -99.0
    print(json.dumps({"blocks": seq_expected, "tone_hz": peak, "tone_dbm0": round(level, 2),
                      "samples_heard": len(heard)}))


if __name__ == "__main__":
    main()
