"""``promptsearch ui`` over HTTP: the real server on a free loopback port, a real tiny-model run and hand-written
runs. Pages are checked against the numbers in the logs; ratings against ratings.jsonl; ids, tokens and hostile
text against the rules (nothing outside the folders given, every text escaped)."""

import html
import json
import multiprocessing
import re
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner
from markupsafe import escape

from .ui_helpers import HOSTILE_INPUTS, HOSTILE_PROMPT, get, hand_run, make_runs, needs_ui, post, write_task

needs_ui()

from promptsearch.cli import main
from promptsearch.feedback import read_ratings
from promptsearch.format import fmt
from promptsearch.registry import Registry
from promptsearch.stats import format_p
from promptsearch.store import RunStore, best_records
from promptsearch.ui.rating import append_rating
from promptsearch.ui.server import Background
from promptsearch.ui.svg import best_so_far, nice_ticks

from .test_registry import make_artifact


@pytest.fixture(scope="module")
def root(tiny, small_task_dir, tmp_path_factory):
    return make_runs(tmp_path_factory.mktemp("ui-runs"), tiny, small_task_dir, "unfinished")


@pytest.fixture(scope="module")
def server(root):
    registry = root["base"] / "registry.db"
    reg = Registry(registry)
    reg.add("sst2", make_artifact(scores=(1, 1, 0, 1, 0, 1, 1, 1)))
    reg.add("sst2", make_artifact(prompt="Review: {input}\nIs it positive?", scores=(1,) * 8))
    s = Background([root["runs"]], registry=registry).start()
    yield s
    s.stop()


def records(run_dir):
    return RunStore(run_dir).read("candidates.jsonl")


def section(body: str, ident: str) -> str:
    start = body.index(f'id="{ident}"')
    end = body.find("</section>", start)
    return body[start:end]


def row_of(body: str, run_id: str) -> str:
    start = body.index(f'href="/run/{run_id}"')
    return body[start:body.index("</tr>", start)]


# ---- pages ----------------------------------------------------------------------------------------------------
def test_runs_page_lists_each_run_with_status_scores_and_resume_command(server, root):
    status, body, _ = get(server.url + "/")
    assert status == 200
    s = root["summary"]
    real = row_of(body, "real")
    assert "status-finished" in real and html.escape(fmt(s["best"]["test"], ci=True, n=True)) in real
    assert fmt(s["seed"]["dev"], ci=True, n=True) in real and f">{s['budget_used']['evals']}<" in real
    assert "templates + clarify" in real and "tiny-llama-0" in real
    # the honest number first: a held-out estimate where the run kept rows, the dev score that chose it beside it
    assert s["estimate"]["which"] == "holdout"
    assert f"{fmt(s['best']['holdout'], ci=True, n=True)} held-out<br>{fmt(s['best']['dev'], ci=True, n=True)} dev, chose it" in real
    unfinished = row_of(body, "unfinished")
    assert "status-interrupted" in unfinished
    assert f"promptsearch run --resume {root['runs'] / 'unfinished'}" in unfinished


def test_a_run_held_by_a_process_shows_as_running_and_its_page_refreshes_itself(server, root):
    with RunStore(root["runs"] / "unfinished").locked():
        _, body, _ = get(server.url + "/")
        assert "status-running" in row_of(body, "unfinished")
        _, page, _ = get(server.url + "/run/unfinished")
        assert 'data-live="1"' in page
    _, body, _ = get(server.url + "/")
    assert "status-interrupted" in row_of(body, "unfinished")


def test_state_changes_as_the_log_grows_and_the_page_shows_the_new_rung(server, root, tmp_path):
    run = root["runs"] / "growing"
    task_dir = write_task(tmp_path / "t", dev=[("a", 1), ("b", 0)], test=[("c", 1)])
    hand_run(run, task_dir, [("A: {input}", ["positive", "positive"])], finished=False)
    _, first, _ = get(server.url + "/run/growing/state")
    lines = (run / "candidates.jsonl").read_text().splitlines()
    grown = json.loads(lines[0])
    grown["candidate"] = {**grown["candidate"], "id": "abcdef123456", "prompt": "B: {input}", "strategy": "templates"}
    (run / "candidates.jsonl").write_text(lines[0] + "\n" + json.dumps(grown) + "\n")
    _, second, _ = get(server.url + "/run/growing/state")
    assert json.loads(first)["version"] != json.loads(second)["version"]
    _, page, _ = get(server.url + "/run/growing")
    assert "B: {input}" in page and "2 candidates" in page


def test_a_run_with_nothing_scored_yet_is_listed_and_its_pages_say_so(server, root):
    empty = root["runs"] / "just-started"
    empty.mkdir()
    (empty / "config.json").write_text((root["runs"] / "real" / "config.json").read_text())
    try:
        assert "status-interrupted" in row_of(get(server.url + "/")[1], "just-started")
        status, body, _ = get(server.url + "/run/just-started")
        assert status == 200 and "Nothing scored yet." in body
        status, body, _ = get(server.url + "/run/just-started/compare")
        assert status == 400 and "nothing scored yet" in body
    finally:
        (empty / "config.json").unlink()
        empty.rmdir()


def test_run_page_best_prompt_paired_test_leaderboard_and_curve(server, root):
    status, body, _ = get(server.url + "/run/real")
    assert status == 200
    s = root["summary"]
    assert html.escape(s["best"]["prompt"]) in body
    # few labelled rows: the held-out estimate beside dev (which chose the winner), for the best and the seed
    assert "<th>held-out</th>" in body and "no choice ever saw" in body
    for who in ("best", "seed"):
        assert f"<td>{html.escape(fmt(s[who]['holdout'], ci=True, n=True))}</td>" in body
    _, hand, _ = get(server.url + "/run/hostile")  # nothing held out: the dev score is said to be the choosing one
    assert "<th>held-out</th>" not in hand and "no rows held out" in hand
    # a summary from before the estimate says nothing either way, as `promptsearch run`'s summary does
    path = root["runs"] / "hostile" / "summary.json"
    kept = path.read_text()
    try:
        path.write_text(json.dumps({k: v for k, v in json.loads(kept).items() if k != "estimate"}))
        _, older, _ = get(server.url + "/run/hostile")
        assert "Best prompt" in older and "no rows held out" not in older and "<th>held-out</th>" not in older
    finally:
        path.write_text(kept)
    assert f"p = <strong>{format_p(s['paired_test']['p_value'])}</strong>" in body
    assert f"{s['paired_test']['difference']:+.3f}" in body
    held = s["paired_holdout"]  # the winner against the seed on the held-out rows, as `promptsearch run` prints it
    assert (f"Best − seed on the same held-out rows: <strong>{held['difference']:+.3f}</strong>,\n  exact McNemar "
            f"p = <strong>{format_p(held['p_value'])}</strong>") in body
    assert "same held-out rows" not in hand
    board = section(body, "leaderboard")
    ids = {r["candidate"]["id"] for r in records(root["runs"] / "real")}
    assert board.count(">examples</a>") == len(ids) and all(f"/prompt/{cid}" in board for cid in ids)
    assert "<polyline" in body and ">overall " in body
    for st in s["stages"]:
        assert f"<td>{st['strategy']}</td><td>{st['evals']}</td>" in body
    from promptsearch.search.stopping import stop_line

    assert f'<p class="meta">{html.escape(stop_line(s))}</p>' in body  # why it stopped, as `promptsearch run` ends
    path = root["runs"] / "real" / "summary.json"  # and what a limit or the context left out after the search
    kept = path.read_text()
    try:
        path.write_text(json.dumps({**json.loads(kept), "final_notes": ["2 of 30 test rows do not fit <b>"]}))
        _, noted, _ = get(server.url + "/run/real")
        assert '<p class="notice">After the search: 2 of 30 test rows do not fit &lt;b&gt;</p>' in noted
        for damaged in ({"final_notes": ["a note", 7]}, {"stages": [1, 2]}, {"stages": [{}]}):  # one line, no traceback
            path.write_text(json.dumps({**json.loads(kept), **damaged}))
            status, odd, _ = get(server.url + "/run/real")
            assert status == 400 and "stopped:" not in odd and "summary.json: field" in odd
    finally:
        path.write_text(kept)


def test_prompt_page_rows_errors_and_confusion_match_the_log(server, root):
    run_dir = root["runs"] / "real"
    best = root["summary"]["best"]["id"]
    logged = {}
    for rec in records(run_dir):
        if rec["candidate"]["id"] == best:
            logged.update(rec["results"])
    wrong = sum(1 for r in logged.values() if r[0] < 1)
    _, body, _ = get(server.url + f"/run/real/prompt/{best}")
    dev = section(body, "split-dev")
    assert dev.count('<tr class="wrong">') == wrong and dev.count('<tr class="right">') == len(logged) - wrong
    assert f"{len(logged)} examples scored" in dev
    diag = sum(int(n) for n in re.findall(r'<td class="diag">(\d+)</td>', dev))
    assert diag == len(logged) - wrong
    test = section(body, "split-test")
    assert test.count("<tr class=") == root["summary"]["best"]["test"]["n"]
    _, errors, _ = get(server.url + f"/run/real/prompt/{best}?errors=1")
    assert section(errors, "split-dev").count('<tr class="wrong">') == wrong
    assert '<tr class="right">' not in section(errors, "split-dev")
    other = next(r["candidate"]["id"] for r in best_records(records(run_dir))
                 if r["candidate"]["id"] not in (best, root["summary"]["seed"]["id"]))
    _, body, _ = get(server.url + f"/run/real/prompt/{other}")
    assert "not logged" in section(body, "split-test")


def test_compare_gives_the_runs_paired_test_and_every_disagreement(server, root):
    s = root["summary"]
    a, b = s["seed"]["id"], s["best"]["id"]
    _, body, _ = get(server.url + f"/run/real/compare?a={a}&b={b}")
    test = section(body, "cmp-test")
    assert f"p = <strong>{format_p(s['paired_test']['p_value'])}</strong>" in test
    assert f"{s['paired_test']['difference']:+.3f}" in test
    ra, rb = {}, {}
    for rec in records(root["runs"] / "real"):
        {a: ra, b: rb}.get(rec["candidate"]["id"], {}).update(rec["results"])
    shared = [k for k in ra if k in rb]
    differ = [k for k in shared if ra[k][:2] != rb[k][:2]]
    assert f"{len(differ)} of {len(shared)} shared examples differ" in section(body, "cmp-dev")
    assert section(body, "cmp-dev").count("<tr><td class=\"text\">") == len(differ)


def test_registry_page_versions_diff_and_paired_test(server):
    _, body, _ = get(server.url + "/registry")
    assert "sst2" in body and "<strong>v2</strong>" in body and "<strong>v1</strong>" in body
    assert "/registry/compare?a=sst2@v1&amp;b=sst2@v2" in body and "promptsearch eval --artifact sst2-v2.json --check" in body
    _, cmp, _ = get(server.url + "/registry/compare?a=sst2@v1&b=sst2@v2")
    assert "<strong>+0.250</strong>" in cmp and "p = <strong>0.5</strong>" in cmp and "2 example(s) scored differently" in cmp
    assert '<span class="dadd">+ Is it positive?</span>' in cmp
    assert get(server.url + "/registry/compare?a=../x&b=sst2")[0] == 404


# ---- rating ---------------------------------------------------------------------------------------------------
def rate_form(server, run_id="real"):
    _, body, _ = get(server.url + f"/run/{run_id}/rate")
    field = lambda name: re.search(rf'name="{name}" value="([^"]*)"', body).group(1)
    return {"form_key": field("form_key"), "candidate": field("candidate"), "example": field("example"), "pos": "0"}


def test_a_rating_is_the_record_rate_writes_and_refine_reads(server, root):
    run_dir = root["runs"] / "real"
    before = (run_dir / "ratings.jsonl").read_text().count("\n") if (run_dir / "ratings.jsonl").exists() else 0
    form = rate_form(server)
    status, _, headers = post(server.url + "/run/real/rate", {**form, "rating": "2", "comment": "too long"})
    assert status == 303 and headers["location"].startswith("/run/real/rate?pos=0&saved=2")
    ratings, problems = read_ratings(run_dir / "ratings.jsonl", strict=True)
    assert not problems and len(ratings) == before + 1
    r = ratings[-1]
    cand = next(x["candidate"] for x in records(run_dir) if x["candidate"]["id"] == form["candidate"])
    logged = {}
    for rec in records(run_dir):
        if rec["candidate"]["id"] == form["candidate"]:
            logged.update(rec["results"])
    assert (r.rating, r.comment, r.candidate, r.prompt, r.example) == (2, "too long", cand["id"], cand["prompt"], form["example"])
    assert r.output == logged[form["example"]][1] and r.score == logged[form["example"]][0] and r.source == "ui"
    _, page, _ = get(server.url + "/run/real/rate")  # the rated pair is no longer offered
    assert f'value="{form["example"]}"' not in page or f'value="{form["candidate"]}"' not in page


def test_forged_or_bad_rating_forms_write_nothing(server, root):
    path = root["runs"] / "real" / "ratings.jsonl"
    before = path.read_bytes() if path.exists() else b""
    form = rate_form(server)
    assert post(server.url + "/run/real/rate", {**form, "form_key": "forged", "rating": "3"})[0] == 403
    assert post(server.url + "/run/real/rate", {**form, "rating": "7"})[0] == 400
    assert post(server.url + "/run/real/rate", {**form, "candidate": "0123456789ab", "rating": "3"})[0] == 400
    assert post(server.url + "/run/real/rate", {**form, "rating": "3"}, headers={"Content-Type": "text/plain"})[0] == 415
    assert (path.read_bytes() if path.exists() else b"") == before


def _append_many(run_dir, who, n):
    from promptsearch.feedback import Rating

    for i in range(n):  # a comment bigger than a write buffer: a buffered writer would split the line
        append_rating(Path(run_dir), Rating("c", "p {input}", f"in {i}", "out", 1 + i % 5, comment=who * 20000))


def test_two_raters_at_once_lose_nothing(tmp_path):
    (tmp_path / "ratings.jsonl").write_bytes(b'{"torn": ')  # a line a kill left half-written
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_append_many, args=(tmp_path, who, 40)) for who in "ab"]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    ratings, problems = read_ratings(tmp_path / "ratings.jsonl")
    assert len(ratings) == 80 and len(problems) == 1  # the torn line is reported, never merged with a rating
    assert sorted(r.comment[0] for r in ratings) == ["a"] * 40 + ["b"] * 40


def test_ratings_posted_concurrently_to_the_server_all_arrive(server, root):
    from concurrent.futures import ThreadPoolExecutor

    run_dir = root["runs"] / "real"
    before = len(read_ratings(run_dir / "ratings.jsonl")[0])
    form = rate_form(server)
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda i: post(server.url + "/run/real/rate", {**form, "rating": str(1 + i % 5),
                                                                             "comment": f"rater {i}"})[0], range(24)))
    assert codes == [303] * 24
    ratings, _ = read_ratings(run_dir / "ratings.jsonl", strict=True)
    assert len(ratings) == before + 24 and {r.comment for r in ratings[before:]} == {f"rater {i}" for i in range(24)}


# ---- safety ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/run/..%2F..%2Fetc%2Fpasswd", "/run/../../etc/passwd", "/run/%2e%2e/%2e%2e/etc",
                                  "/run/real/prompt/..%2F..%2Fconfig", "/run/real/prompt/zzzz", "/static/..%2Fapp.py",
                                  "/run/real/compare?a=../../x", "/run/outside"])
def test_ids_in_urls_reach_nothing_outside_the_folders(server, path):
    status, body, _ = get(server.url + path)
    assert status == 404
    assert "root:" not in body and "import" not in body


def test_a_symlink_leading_out_of_the_folder_is_not_listed(server, root, tmp_path):
    outside = tmp_path / "elsewhere"
    hand_run(outside, write_task(tmp_path / "t", dev=[("a", 1)], test=[("b", 0)]), [("X: {input}", ["positive"])])
    (root["runs"] / "outside").symlink_to(outside)
    try:
        assert 'href="/run/outside"' not in get(server.url + "/")[1]
        assert get(server.url + "/run/outside")[0] == 404
    finally:
        (root["runs"] / "outside").unlink()


def test_hostile_prompts_and_inputs_render_as_text(server, root):
    cands = root["hostile"]["candidates"]
    pages = ["/", "/run/hostile", f"/run/hostile/prompt/{cands[1]['id']}", f"/run/hostile/compare?a={cands[0]['id']}&b={cands[1]['id']}",
             "/run/hostile/rate"]
    for page in pages:
        status, body, headers = get(server.url + page)
        assert status == 200, page
        assert "<script>window.__xss" not in body and "<img src=x" not in body and "</pre></td><script>" not in body, page
        assert "script-src 'self'" in headers["content-security-policy"]
    _, body, _ = get(server.url + f"/run/hostile/prompt/{cands[1]['id']}")
    assert str(escape(HOSTILE_PROMPT)) in body and str(escape(HOSTILE_INPUTS[1])) in body


def test_loopback_serves_only_its_own_host_name(server):
    assert get(server.url + "/", headers={"Host": "evil.example:80"})[0] == 400
    assert get(server.url + "/", headers={"Host": f"localhost:{server.port}"})[0] == 200


def test_a_token_is_needed_on_every_request_when_set(root):
    s = Background([root["runs"]], token="s3cret-token").start()
    try:
        assert get(s.url + "/")[0] == 401 and get(s.url + "/run/real")[0] == 401
        assert get(s.url + "/static/ui.css")[0] == 401
        assert get(s.url + "/?token=wrong")[0] == 401
        status, _, headers = get(s.url + "/run/real?token=s3cret-token&all=1")
        assert status == 303 and headers["location"] == "/run/real?all=1" and "HttpOnly" in headers["set-cookie"]
        assert get(s.url + "/run/real", headers={"Cookie": "promptsearch_token=s3cret-token"})[0] == 200
        assert get(s.url + "/", headers={"Authorization": "Bearer s3cret-token"})[0] == 200
    finally:
        s.stop()


# ---- command line and small pieces -----------------------------------------------------------------------------
def test_cli_errors_are_one_line(tmp_path):
    r = CliRunner().invoke(main, ["ui", str(tmp_path / "missing")])
    assert r.exit_code == 2 and r.stderr.strip() == f"error: {tmp_path / 'missing'}: no such folder of runs"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = CliRunner().invoke(main, ["ui", str(tmp_path), "--port", str(port)])
    assert r.exit_code == 2 and "in use" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_nice_ticks_are_round_and_cover_the_range():
    assert nice_ticks(0, 1000) == [0, 200, 400, 600, 800, 1000]
    assert nice_ticks(0.42, 0.71) == [0.45, 0.5, 0.55, 0.6, 0.65, 0.7]


def test_best_so_far_is_report_curves_in_one_pass(root):
    import random

    from promptsearch.report import RunData, curves, load_run

    run = load_run(root["runs"] / "real")
    assert best_so_far(run.records) == curves(run)
    rng = random.Random(1)
    for _ in range(20):  # random logs: rungs climb, some rungs are logged twice with another score
        records, evals, sizes = [], 0, {}
        for _ in range(150):
            cid = f"c{rng.randrange(40)}"
            size = sizes.get(cid, 0) + rng.choice([0, 8, 8, 16]) or 8
            sizes[cid] = size
            evals += size
            records.append({"candidate": {"id": cid, "prompt": "p", "strategy": ["seed", "a", "b"][int(cid[1:]) % 3]},
                            "size": size, "score": {"score": rng.choice([0.25, 0.5, 0.75])}, "evals_used": evals,
                            "tie": rng.choice([None, -1.0, -2.0])})
        data = RunData(dir=Path("."), config={}, records=records, summary=None)
        assert best_so_far(records) == curves(data)


def test_the_lazy_log_reader_keeps_what_runstore_keeps(root, tmp_path):
    from promptsearch.ui.log import read_log, results_of

    lines = (root["runs"] / "real" / "candidates.jsonl").read_bytes().splitlines(keepends=True)
    bad_size = json.loads(lines[1])
    bad_size["size"] = "big"
    cases = {
        "as logged": lines,
        "damaged": [lines[0], b"\xff\xfe not json\n", (json.dumps(bad_size) + "\n").encode(), b'{"candidate": 1}\n',
                    lines[1], lines[2][:-1] + b"\n" + b"\n", lines[3][: len(lines[3]) // 2]],  # ends torn mid-line
        "no final newline": lines[:4] + [lines[4].rstrip(b"\n")],
        "results torn off": lines[:2] + [lines[2][: lines[2].index(b'"results"') + 14]],
    }
    for name, content in cases.items():
        run_dir = tmp_path / name.replace(" ", "-")
        run_dir.mkdir()
        (run_dir / "candidates.jsonl").write_bytes(b"".join(content))
        expected = RunStore(run_dir).read("candidates.jsonl")
        got = read_log(run_dir / "candidates.jsonl")
        assert [{k: v for k, v in r.items() if not k.startswith("_")} | {"results": results_of(r)} for r in got] == expected, name
    assert len(read_log(tmp_path / "damaged" / "candidates.jsonl")) == 3


def test_a_token_only_off_loopback_and_fresh_each_start():
    from promptsearch.ui.server import is_loopback, plan

    local = plan("127.0.0.1", 0)
    assert local.token is None and f"127.0.0.1:{local.port}" in local.hosts and local.url == f"http://127.0.0.1:{local.port}/"
    assert is_loopback("localhost") and is_loopback("::1") and not is_loopback("0.0.0.0") and not is_loopback("10.0.0.2")
    first, second = plan("0.0.0.0", 0), plan("0.0.0.0", 0)
    assert first.hosts is None and len(first.token) >= 32 and first.token != second.token
    assert first.url.endswith(f":{first.port}/?token={first.token}")


def test_the_ui_command_prints_its_address_as_json_and_serves_it(root):
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "promptsearch", "ui", str(root["runs"]), "--port", "0", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        info = json.loads(proc.stdout.readline())
        assert info["url"] == f"http://127.0.0.1:{info['port']}/" and info["token_required"] is False
        import time

        for _ in range(100):
            try:
                status, body, _ = get(info["url"])
                break
            except OSError:
                time.sleep(0.1)
        assert status == 200 and 'href="/run/real"' in body
    finally:
        proc.terminate()
        proc.wait(10)
