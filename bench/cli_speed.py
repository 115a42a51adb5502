"""CLI start-up: wall time of `okxlab --help` and `okxlab runs list` as an operator runs them (new processes).

    python bench/cli_speed.py [--repeat 10] [--json out.json]

`runs list` reads a SQLite database made by `okxlab db upgrade` with 200 runs in it, so the figure includes
opening the database and checking its schema, as every database command does. Targets (issue 18): `--help`
≤ 0.3 s and `runs list` ≤ 0.8 s on the 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import load, median, percentile, say, write_json  # noqa: E402

OKXLAB = str(Path(sys.executable).with_name("okxlab"))


def timed(argv: list[str], env: dict[str, str], repeat: int) -> list[float]:
    subprocess.run(argv, env=env, capture_output=True, check=True)  # warm the page cache once
    out = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(argv, env=env, capture_output=True, check=True)
        out.append(time.perf_counter() - started)
    return out


def seed(url: str, runs: int) -> None:
    from okxlab.db.models import Run
    from okxlab.db.session import session_scope

    start = datetime(2022, 11, 1, tzinfo=UTC)
    with session_scope(url) as s:
        for i in range(runs):
            s.add(Run(id=f"bench-{i:05d}", source="schedule:bench", book="sim", agent="trend",
                      scheduled_for=start + timedelta(hours=4 * i), status="completed", stage="order"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.sqlite"
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("OKXLAB_")},
               "OKXLAB_DATABASE_URL": url, "OKXLAB_HOME": tmp}
        subprocess.run([OKXLAB, "db", "upgrade"], env=env, capture_output=True, check=True)
        seed(url, 200)
        figures = {"load_before": load()}
        for name, argv in (("help", [OKXLAB, "--help"]), ("runs_list", [OKXLAB, "runs", "list"])):
            times = timed(argv, env, args.repeat)
            figures[name] = {"median_s": round(median(times), 3), "p90_s": round(percentile(times, 90), 3),
                             "repeat": args.repeat}
            say(f"okxlab {' '.join(argv[1:])}: median {figures[name]['median_s']:.3f} s, "
                f"p90 {figures[name]['p90_s']:.3f} s over {args.repeat}")
        figures["load_after"] = load()
    write_json(args.json, figures)


if __name__ == "__main__":
    main()
