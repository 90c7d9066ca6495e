"""One busy hour of the hotel profile in virtual time: prints one JSON object on its last line.

0.9 Erlang offered per trunk, mean holding time 180 s, Poisson arrivals (an
arrival on a busy trunk is blocked), agents logged in at their phones; the
whole appliance runs (media tier in C, control tier, records to SQLite) on the
virtual clock. Reports wall seconds, calls handled, and a digest of the CDRs
that must be identical across runs with the same seed. The target (reported,
not asserted): under 60 s of wall time for the hour.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from appliance.config.loader import load_config
from appliance.engine import Engine
from appliance.storage import cdr_digest
from appliance.world.traffic import traffic_world

ROOT = Path(__file__).resolve().parent.parent


def run_once(minutes: int, seed: int, profile: Path) -> dict[str, object]:
    cfg = load_config(profile)
    duration = minutes * 60000
    with tempfile.TemporaryDirectory(prefix="cicbox-bench-") as tmp:
        state = Path(tmp)
        world = traffic_world(cfg, duration, seed)
        engine = Engine(state, cfg, 1, clock="virtual", world=world)
        t0 = time.perf_counter()
        engine.run_for(duration)
        wall = time.perf_counter() - t0
        stats = dict(engine.stats)
        engine.close()
        digest = cdr_digest(state / "cicbox.db")
    return {"wall_s": round(wall, 2), "offered": stats["offered"], "answered": stats["answered"],
            "abandoned": stats["abandoned"], "callers": len(world.callers),
            "blocked": sum(1 for c in world.callers if c.blocked), "cdr_digest": digest}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--minutes", type=int, default=60, help="minutes of engine clock (default: the busy hour)")
    p.add_argument("--seed", type=int, default=20261125)
    p.add_argument("--runs", type=int, default=1, help="runs to compare digests (default 1)")
    p.add_argument("--profile", default=str(ROOT / "configs" / "hotel.yaml"))
    args = p.parse_args()
    print(f"seed {args.seed}", file=sys.stderr)
    runs = [run_once(args.minutes, args.seed, Path(args.profile)) for _ in range(args.runs)]
    first = runs[0]
    result = {
        "bench": "virtual_hour",
        "profile": Path(args.profile).name,
        "seed": args.seed,
        "engine_minutes": args.minutes,
        "erlang_per_trunk": 0.9,
        "mean_hold_s": 180,
        **first,
        "calls_handled": first["answered"],
        "digest_identical_across_runs": len({r["cdr_digest"] for r in runs}) == 1 if len(runs) > 1 else None,
        "wall_s_runs": [r["wall_s"] for r in runs],
        "target_wall_s": 60,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
