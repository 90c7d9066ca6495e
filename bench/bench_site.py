"""The benchmark site at full size: writes configs/bench-240.yaml (tests/test_bench_site.py checks the
committed file is this program's output).

Its calls come in on 8 E1 PRI spans (`signalling: pri_cpe`, 30 B-channels each: 240 channels from the
exchange, the world's network-side stack on the far end of each span), reached by one DNIS routed to
one IVR menu of 8 queues; 120 agents' phones on FXS ports answer them. Every agent serves every queue
(skills and per-queue agent groups come with the ACD). The spans' echo cancellers are off
(`echo_taps: 0`): the full-scale figure is defined without them (bench/virtual_hour.py measures
`wall_s_echo_on` beside it).

Its analog variant (:func:`analog_site_yaml`, never written to a file): the site as it was before the
spans carried its calls, 120 FXO trunks from the exchange (one trunk group, hunted by the exchange) and
the same 120 phones, 240 busy channels at the peak; bench/virtual_hour.py runs it beside the PRI site
(`wall_s_fxo`), and the soak runs it (bench/soak.py).

    .venv/bin/python bench/bench_site.py            # rewrite configs/bench-240.yaml
    .venv/bin/python bench/bench_site.py --check    # exit 1 if the committed file differs
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "configs" / "bench-240.yaml"

TRUNKS = 120
PHONES = 120
QUEUES = 8
SPANS = 8
B_CHANNELS = 30         # an E1 PRI span's B-channels (TS1-15, TS17-31; TS16 is its D-channel)
DNIS = "075588800000"


def site_yaml(trunks: int = TRUNKS, phones: int = PHONES, queues: int = QUEUES, *, spans: int = 0) -> str:
    """A bench site as YAML text: `trunks` FXO trunks and `spans` E1 PRI spans (pri_cpe; at least one
    line in all), at least one phone, 1 to 9 queues (one menu key each)."""
    if trunks < 0 or spans < 0 or trunks + spans < 1 or phones < 1 or not 1 <= queues <= 9:
        raise ValueError(f"a bench site needs trunks or spans (>= 1 in all), phones >= 1 and 1-9 queues, "
                         f"not {trunks} trunks, {spans} spans, {phones} phones, {queues} queues")
    agents = [f"{1001 + i}" for i in range(phones)]
    members = ", ".join(f"'{a}'" for a in agents)
    if spans:
        lines = [f"# {spans} E1 PRI spans (pri_cpe, {spans * B_CHANNELS} B-channels against the world's network side) "
                 f"and {phones} agents' phones.",
                 "# Every agent serves every queue (skills and agent groups come with the ACD).",
                 "# The spans' echo cancellers are off (echo_taps: 0): the full-scale figure is defined without them."]
    else:
        lines = [f"# {trunks} FXO trunks and {phones} agents' phones: {trunks + phones} busy channels at the peak.",
                 "# Every agent serves every queue (skills and agent groups come with the ACD).",
                 "# The trunks' echo cancellers are off (echo_taps: 0): the full-scale figure is defined without them."]
    out = [
        "# The benchmark site at full size, written by bench/bench_site.py (do not edit by hand).",
        *lines,
        "",
        "site:",
        "  name: Bench 240",
        "  zone: cn",
        "  law: alaw",
        '  epoch: "2026-01-01T09:00:00"',
        "",
        "card:",
        "  backend: sim",
        "  k: 5",
        "",
        "ports:",
    ]
    out += [f"  - {{kind: fxo, name: trunk{i}, number: '0755888{i:05d}', callerid: fsk_bell202, "
            f"answer_on_ring: 2, echo_taps: 0}}" for i in range(1, trunks + 1)]
    out += [f"  - {{kind: fxs, name: phone{i}, extension: '{8000 + i}'}}" for i in range(1, phones + 1)]
    if spans:
        out += ["", "spans:"]
        out += [f"  - {{kind: e1, name: span{i}, signalling: pri_cpe, timing: {i}, echo_taps: 0}}"
                for i in range(1, spans + 1)]
    out += ["", "routes:"]
    out += [f"  - {{trunk: trunk{i}, ivr: main}}" for i in range(1, trunks + 1)]
    if spans:
        out += [f"  - {{dnis: '{DNIS}', ivr: main}}"]
    out += ["", "ivrs:", "  main:", "    greeting: welcome", "    language: en", "    menu:"]
    out += [f'      "{q}": {{queue: q{q}}}' for q in range(1, queues + 1)]
    out += ["    timeout_ms: 5000", "    max_repeats: 2", "", "queues:"]
    for q in range(1, queues + 1):
        out += [f"  q{q}:", f"    agents: [{members}]", "    ring_timeout_ms: 15000", "    strategy: longest_idle"]
    out += ["", "agents:"]
    out += [f"  - {{number: '{a}', name: 'Agent {i + 1}', phone: phone{i + 1}}}" for i, a in enumerate(agents)]
    return "\n".join(out) + "\n"


def pri_site_yaml() -> str:
    """The benchmark site (configs/bench-240.yaml): 8 E1 PRI spans, 120 phones, 8 queues."""
    return site_yaml(0, PHONES, QUEUES, spans=SPANS)


def analog_site_yaml() -> str:
    """Its analog variant: 120 FXO trunks, the same phones and queues."""
    return site_yaml(TRUNKS, PHONES, QUEUES)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--check", action="store_true", help="exit 1 if configs/bench-240.yaml is not this output")
    args = p.parse_args()
    text = pri_site_yaml()
    if args.check:
        if TARGET.read_text() != text:
            print(f"{TARGET} differs from bench/bench_site.py's output: run it to rewrite", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text)
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
