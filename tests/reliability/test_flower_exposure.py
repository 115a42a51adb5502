"""What Flower shows to someone without its password, and to the network (a real `celery -A workers flower`).

Flower is started with the README's command (`FLOWER_BASIC_AUTH=user:password celery -A workers flower`).
Every path in Flower's own URL table is requested without credentials (GET, and POST for the API); only the
paths open by design may answer 2xx: /healthcheck ("OK") and /logout (a static page). Every page, the API and
/metrics answer 401, and 200 with the password. The port listens on 127.0.0.1 only (read from
/proc/net/tcp*, and a connection to each of this machine's other addresses fails); FLOWER_ADDRESS moves it.
Settings that look like authentication but are not are refused at start: one line, exit 2, nothing served.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from tests.reliability.harness import Results
from tests.support.flower import FlowerProcess, connects, listening, non_loopback_addresses, refused, routes

AUTH = ("okxlab", "exposure-test-pw")
OPEN_BY_DESIGN = {"/healthcheck", "/logout"}  # "OK" for probes; the signed-out page
PAGES = ["/", "/workers", "/tasks", "/broker", "/api/workers", "/api/tasks", "/api/queues/length", "/metrics"]
GITHUB = "flower.views.auth.GithubLoginHandler"
OAUTH = ["--auth=.*@example.com", f"--auth_provider={GITHUB}"]

# (what, arguments, environment, flowerconfig.py, what the one line says)
UNSAFE = [
    ("no authentication", [], {}, None, "set FLOWER_BASIC_AUTH=user:password"),
    ("--auth= (empty)", ["--auth="], {}, None, "set FLOWER_BASIC_AUTH=user:password"),
    ("bare --auth_provider=", ["--auth_provider="], {}, None, "set FLOWER_BASIC_AUTH=user:password"),
    ("--auth_provider without --auth", [f"--auth_provider={GITHUB}"], {}, None, "signs nobody in without --auth"),
    ("FLOWER_AUTH empty", [], {"FLOWER_AUTH": ""}, None, "set FLOWER_BASIC_AUTH=user:password"),
    ("FLOWER_BASIC_AUTH empty", [], {"FLOWER_BASIC_AUTH": ""}, None, "basic auth must be user:password"),
    ("FLOWER_BASIC_AUTH without a password", [], {"FLOWER_BASIC_AUTH": "okxlab:"}, None,
     "basic auth must be user:password"),
    ("--basic-auth without a user", ["--basic-auth=:pw"], {}, None, "basic auth must be user:password"),
    ("one good, one malformed credential", ["--basic_auth=okxlab:pw,okxlab"], {}, None,
     "basic auth must be user:password"),
    ("OAuth without key, secret, redirect URI", OAUTH, {}, None, "OAuth needs --oauth2_key, --oauth2_secret"),
    ("OAuth without a provider", ["--auth=.*@example.com"], {"FLOWER_OAUTH2_KEY": "k", "FLOWER_OAUTH2_SECRET": "s"},
     None, "--auth needs --auth_provider"),
    ("OAuth provider that does not import", ["--auth=.*@example.com", "--auth_provider=nowhere.Login",
                                            "--oauth2_key=k", "--oauth2_secret=s",
                                            "--oauth2_redirect_uri=http://localhost/login"], {}, None,
     "cannot be imported"),
    ("flowerconfig.py empties FLOWER_BASIC_AUTH", [], {"FLOWER_BASIC_AUTH": "okxlab:pw"}, "basic_auth = []\n",
     "set FLOWER_BASIC_AUTH=user:password"),
    ("--conf file that does not exist", ["--conf=/nonexistent/flowerconfig.py"], {"FLOWER_BASIC_AUTH": "okxlab:pw"},
     None, "Flower's options cannot be read"),
    ("--address= (every interface)", ["--address="], {"FLOWER_BASIC_AUTH": "okxlab:pw"}, None,
     "Flower's address is empty"),
]


def _probe(base: str) -> list[dict[str, object]]:
    out = []
    for path in routes():
        methods = ["GET", "POST"] if path.startswith("/api/") else ["GET"]
        for method in methods:
            status = requests.request(method, f"{base}{path}", timeout=10, allow_redirects=False).status_code
            out.append({"method": method, "path": path, "status": status})
    return out


def _refusal(tmp_path: Path, prefix: str, case: tuple) -> dict[str, object]:
    label, args, env, config, expected = case
    cwd = tmp_path / f"case-{UNSAFE.index(case)}"
    cwd.mkdir()
    if config is not None:
        (cwd / "flowerconfig.py").write_text(config)
    code, lines = refused(prefix, args, env, cwd=cwd)
    ok = code == 2 and len(lines) == 1 and lines[0].startswith("okxlab: error: ") and expected in lines[0]
    return {"case": label, "exit": code, "line": lines[-1] if lines else "", "ok": ok,
            "password_shown": any("okxlab:pw" in line for line in lines)}


def test_flower_shows_nothing_without_its_password_and_listens_on_loopback(redis_prefix: str, tmp_path: Path,
                                                                           results: Results) -> None:
    with ThreadPoolExecutor(2) as pool:
        refusals = pool.map(lambda case: _refusal(tmp_path, redis_prefix, case), UNSAFE)
        with FlowerProcess(redis_prefix, FLOWER_BASIC_AUTH=":".join(AUTH)) as flower:
            flower.wait_up()
            listens = listening(flower.port)
            others = {addr: connects(addr, flower.port) for addr in non_loopback_addresses()}
            probes = _probe(flower.url())
            signed_in = {p: requests.get(f"{flower.url()}{p}", auth=AUTH, timeout=10).status_code for p in PAGES}
        with FlowerProcess(redis_prefix, FLOWER_BASIC_AUTH=":".join(AUTH), FLOWER_ADDRESS="127.0.0.2") as moved:
            moved.wait_up(host="127.0.0.2")
            moved_listens = listening(moved.port)
        refusals = list(refusals)

    open_2xx = sorted({p["path"] for p in probes if 200 <= p["status"] < 300})
    unauth = {p["path"]: p["status"] for p in probes if p["method"] == "GET"}
    posted = {p["path"]: p["status"] for p in probes if p["method"] == "POST"}
    results.record("flower_exposure", paths=len(routes()), requests_without_password=len(probes),
                   answered_401=sum(p["status"] == 401 for p in probes), unauthenticated_2xx=open_2xx,
                   open_by_design=sorted(OPEN_BY_DESIGN), get_without_password=unauth, post_without_password=posted,
                   pages_with_password=signed_in, listening=sorted(listens),
                   non_loopback_connects=others, flower_address_override=sorted(moved_listens),
                   unsafe_settings=len(UNSAFE), refused_at_start=sum(r["ok"] for r in refusals),
                   refusals=refusals)
    assert listens == {"127.0.0.1"}
    assert not any(others.values()), others  # nothing answers on this machine's other addresses
    assert moved_listens == {"127.0.0.2"}  # "unless told otherwise"
    assert set(open_2xx) <= OPEN_BY_DESIGN, open_2xx
    # each API path refuses the method it serves (the actions: shut down, revoke, apply... are POSTs)
    assert [p for p in posted if 401 not in (unauth[p], posted[p])] == []
    for path in PAGES:
        assert unauth[path] == 401, (path, unauth[path])
        assert signed_in[path] == 200, (path, signed_in[path])  # the 401 is the password, not a broken page
    assert [r for r in refusals if not r["ok"] or r["password_shown"]] == []
