"""The simulator over HTTP in a process of its own, for the pipeline benchmarks, noting when it acknowledged
each order (wall clock, by clOrdId).

    python bench/_sim_server.py --acks FILE [--data PATH ...]

Prints its URL on the first line of stdout, then serves until SIGTERM, when it writes the acknowledgements
to FILE as JSON ({clOrdId: unix time}). It is okxlab's own SimServer; the only addition is the note taken
right after the matching engine answered an order request (the moment the answer leaves for the client).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--acks", required=True)
    ap.add_argument("--data", action="append", default=[])
    args = ap.parse_args()

    from okxlab.simulator import router
    from okxlab.simulator.server import SimServer
    from okxlab.simulator.simulator import Simulator

    acks: dict[str, float] = {}
    original = router.dispatch

    def noting(world, method, endpoint, query, body, account):  # noqa: ANN001, ANN202
        result = original(world, method, endpoint, query, body, account)
        if method == "POST" and endpoint in ("trade/order", "trade/batch-orders"):
            now = time.time()
            for item in body if isinstance(body, list) else [body]:
                if isinstance(item, dict) and item.get("clOrdId"):
                    acks.setdefault(item["clOrdId"], now)
        return result

    router.dispatch = noting
    server = SimServer(Simulator(data_paths=tuple(args.data), default_clock="replay")).start()
    print(server.url, flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    done.wait()
    Path(args.acks).write_text(json.dumps(acks))
    server.stop()


if __name__ == "__main__":
    main()
