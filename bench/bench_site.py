"""The benchmark site at full size: writes configs/bench-240.yaml (tests/test_bench_site.py checks the
committed file is this program's output).

240 busy channels at the peak: 120 FXO trunks from the exchange (one trunk group, hunted by the
exchange) and 120 agents' phones on FXS ports, in 8 queues reached from one IVR menu. Every agent
serves every queue: with as many trunks as agents, the peak of 240 busy channels needs any free agent
to take any waiting caller (skills and per-queue agent groups come with the ACD). Until E1 PRI spans
can carry the trunks, they are analog; then the site becomes 8 E1 spans of 30 channels. The trunks'
echo cancellers are off (`echo_taps: 0`): the full-scale figure is defined without them
(bench/virtual_hour.py measures `wall_s_echo_on` beside it).

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


def site_yaml(trunks: int = TRUNKS, phones: int = PHONES, queues: int = QUEUES) -> str:
    """The site document as YAML text: at least one trunk and one phone, 1 to 9 queues (one menu key each)."""
    if trunks < 1 or phones < 1 or not 1 <= queues <= 9:
        raise ValueError(f"a bench site needs trunks >= 1, phones >= 1 and 1-9 queues, "
                         f"not {trunks}, {phones}, {queues}")
    agents = [f"{1001 + i}" for i in range(phones)]
    members = ", ".join(f"'{a}'" for a in agents)
    out = [
        "# The benchmark site at full size, written by bench/bench_site.py (do not edit by hand).",
        f"# {trunks} FXO trunks and {phones} agents' phones: {trunks + phones} busy channels at the peak.",
        "# Every agent serves every queue (skills and agent groups come with the ACD).",
        "# The trunks' echo cancellers are off (echo_taps: 0): the full-scale figure is defined without them.",
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
    out += ["", "routes:"]
    out += [f"  - {{trunk: trunk{i}, ivr: main}}" for i in range(1, trunks + 1)]
    out += ["", "ivrs:", "  main:", "    greeting: welcome", "    language: en", "    menu:"]
    out += [f'      "{q}": {{queue: q{q}}}' for q in range(1, queues + 1)]
    out += ["    timeout_ms: 5000", "    max_repeats: 2", "", "queues:"]
    for q in range(1, queues + 1):
        out += [f"  q{q}:", f"    agents: [{members}]", "    ring_timeout_ms: 15000", "    strategy: longest_idle"]
    out += ["", "agents:"]
    out += [f"  - {{number: '{a}', name: 'Agent {i + 1}', phone: phone{i + 1}}}" for i, a in enumerate(agents)]
    return "\n".join(out) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--check", action="store_true", help="exit 1 if configs/bench-240.yaml is not this output")
    args = p.parse_args()
    text = site_yaml()
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
