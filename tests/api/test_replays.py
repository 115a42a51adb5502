"""POST /replays queues a replay range on the replay queue; the worker's task runs it in-process; GET follows it."""

from __future__ import annotations

from tests.api.conftest import Api

WINDOW = {"start": "2022-12-01T00:00Z", "end": "2022-12-03T00:00Z"}  # 13 four-hour ticks


def run_task(task, replay_id: int) -> dict:  # noqa: ANN001
    return task.apply(args=[replay_id, "inline"]).get(disable_sync_subtasks=False)


def test_a_requested_replay_is_queued_run_by_the_task_and_followed(api: Api) -> None:
    from workers.tasks import replay_range

    r = api.post("/replays", json={"agents": ["alpha", "beta"], **WINDOW, "mode": "inline"})
    assert r.status_code == 202, r.text
    queued = r.json()
    assert (queued["status"], queued["ticks"]) == ("queued", 13) and api.queue("replay") == 1
    shown = api.get(f"/replays/{queued['replay_id']}").json()
    assert shown["status"] == "queued" and shown["progress"] == {"runs": 0, "expected_runs": 26, "statuses": {}}
    assert api.audit("replay.requested") == [("api:t-operate", f"replay {queued['replay_id']} (inline) requested")]

    # What the replay worker runs for that message (executed here, in this process; an embedded worker left by an
    # earlier test in this process would otherwise make Celery refuse to wait on a result).
    assert run_task(replay_range, queued["replay_id"])["runs"] == 26
    done = api.get(f"/replays/{queued['replay_id']}").json()
    assert done["status"] == "done" and done["progress"]["runs"] == 26 == done["progress"]["expected_runs"]
    assert {a["agent"] for a in done["summary"]["agents"]} == {"alpha", "beta"}
    assert api.get("/runs", params={"book": done["book"], "limit": 500}).json()["items"].__len__() == 26
    again = run_task(replay_range, queued["replay_id"])  # a redelivered message
    assert again["skipped"].startswith("not queued")


def test_replay_requests_are_checked_before_anything_is_written(api: Api) -> None:
    assert api.post("/replays", json={"agents": ["nobody"], **WINDOW}).status_code == 404
    r = api.post("/replays", json={"agents": ["alpha"], "start": WINDOW["end"], "end": WINDOW["start"]})
    assert r.status_code == 400 and "ends" in r.json()["error"]["message"]
    r = api.post("/replays", json={"agents": ["alpha"], **WINDOW, "mode": "pipeline"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "mode"
    r = api.post("/replays", json={"agents": ["alpha"], **WINDOW, "bar": "7x"})
    assert r.status_code == 400
    # a window of centuries is refused by arithmetic (listing its 5 billion ticks first took the API down)
    r = api.post("/replays", json={"agents": ["alpha"], "start": "0001-01-01T00:00Z", "end": "9999-12-31T00:00Z",
                                   "bar": "1m"})
    assert r.status_code == 400 and "more than 200,000 runs" in r.json()["error"]["message"]
    assert api.get("/replays/999").status_code == 404 and api.queue("replay") == 0
