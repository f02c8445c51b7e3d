"""``promptsearch ui`` in a real headless browser: Debian's Chromium driven through its own chromedriver by
Selenium (both paths given, so Selenium Manager never downloads anything). Skipped when Chromium is absent,
except under CI, where these tests must run (.ci/run installs it)."""

import json
import os
import time
from pathlib import Path

import pytest

from .ui_helpers import HOSTILE_INPUTS, HOSTILE_PROMPT, make_runs, needs_ui

needs_ui()

CHROMIUM, DRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
if not os.environ.get("CI") and not (CHROMIUM.exists() and DRIVER.exists()):
    pytest.skip("Debian's chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)",
                allow_module_level=True)
if not os.environ.get("CI"):
    pytest.importorskip("selenium")

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

from promptsearch.feedback import read_ratings
from promptsearch.store import RunStore
from promptsearch.ui.server import Background


@pytest.fixture(scope="module")
def root(tiny, small_task_dir, tmp_path_factory):
    return make_runs(tmp_path_factory.mktemp("ui-browser"), tiny, small_task_dir, "growing")


@pytest.fixture(scope="module")
def server(root):
    s = Background([root["runs"]]).start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1300,1000"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=str(DRIVER)), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def wait(driver, condition, timeout=15):
    return WebDriverWait(driver, timeout).until(lambda d: condition(d))


def logged(run_dir, cid):
    out = {}
    for rec in RunStore(run_dir).read("candidates.jsonl"):
        if rec["candidate"]["id"] == cid:
            out.update(rec["results"])
    return out


def test_runs_then_a_run_then_its_best_prompt_filtered_to_errors(server, root, browser):
    browser.get(server.url + "/")
    names = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "a.run-link")]
    assert set(names) == {"real", "hostile", "growing"}
    browser.find_element(By.LINK_TEXT, "real").click()
    wait(browser, lambda d: d.current_url.endswith("/run/real"))
    assert "sst2-mini" in browser.find_element(By.TAG_NAME, "h1").text
    ranks = lambda: [int(r.find_element(By.TAG_NAME, "td").text)
                     for r in browser.find_elements(By.CSS_SELECTOR, "#leaderboard tbody tr")]
    n = len(ranks())
    browser.find_element(By.CSS_SELECTOR, "#leaderboard th[data-sort]").click()  # sort by rank: largest first
    assert ranks() == list(range(n, 0, -1))
    browser.find_element(By.CSS_SELECTOR, "#leaderboard th[data-sort]").click()
    assert ranks() == list(range(1, n + 1))
    browser.find_element(By.LINK_TEXT, "Best prompt's examples").click()
    best = root["summary"]["best"]["id"]
    wait(browser, lambda d: d.current_url.endswith(f"/prompt/{best}"))
    browser.find_element(By.ID, "errors-only").click()
    wait(browser, lambda d: "errors=1" in d.current_url)
    rows = browser.find_elements(By.CSS_SELECTOR, "#split-dev table.examples tbody tr")
    wrong = sum(1 for r in logged(root["runs"] / "real", best).values() if r[0] < 1)
    assert len(rows) == wrong and all(r.get_attribute("class") == "wrong" for r in rows)
    assert all(r.find_elements(By.CSS_SELECTOR, "td.mark")[0].text == "✗" for r in rows)


def test_two_ratings_with_the_keyboard_land_in_ratings_jsonl(server, root, browser):
    path = root["runs"] / "real" / "ratings.jsonl"
    browser.get(server.url + "/run/real/rate")
    first_input = browser.find_element(By.CSS_SELECTOR, "pre.text-block").text
    body = browser.find_element(By.TAG_NAME, "body")
    body.send_keys("s")  # skip: the next pair, nothing written
    wait(browser, lambda d: "pos=1" in d.current_url)
    assert browser.find_element(By.CSS_SELECTOR, "pre.text-block").text != first_input and not path.exists()
    comment = browser.find_element(By.ID, "comment")
    comment.click()
    comment.send_keys("too long, 3 words would do")  # digits typed in the comment stay in the comment
    comment.send_keys(Keys.ESCAPE)
    expected_first = browser.find_element(By.NAME, "example").get_attribute("value")
    browser.find_element(By.TAG_NAME, "body").send_keys("4")
    wait(browser, lambda d: "saved=4" in d.current_url)
    second = browser.find_element(By.NAME, "example").get_attribute("value")
    browser.find_element(By.TAG_NAME, "body").send_keys("2")
    wait(browser, lambda d: "saved=2" in d.current_url)
    assert "Saved your rating 2" in browser.find_element(By.ID, "saved").text
    ratings, problems = read_ratings(path, strict=True)
    assert not problems and [(r.rating, r.comment, r.example) for r in ratings] == [
        (4, "too long, 3 words would do", expected_first), (2, "", second)]
    assert all(json.loads(line)["source"] == "ui" for line in path.read_text().splitlines())


def test_compare_two_prompts_picked_in_the_form(server, root, browser):
    browser.get(server.url + "/run/real/compare")
    options = Select(browser.find_element(By.NAME, "a")).options
    a, b = options[1].get_attribute("value"), options[2].get_attribute("value")
    Select(browser.find_element(By.NAME, "a")).select_by_value(a)
    Select(browser.find_element(By.NAME, "b")).select_by_value(b)
    browser.find_element(By.CSS_SELECTOR, "form.pick button").click()
    wait(browser, lambda d: f"a={a}" in d.current_url and f"b={b}" in d.current_url)
    ra, rb = logged(root["runs"] / "real", a), logged(root["runs"] / "real", b)
    shared = [k for k in ra if k in rb]
    differ = sum(1 for k in shared if ra[k][:2] != rb[k][:2])
    assert f"{differ} of {len(shared)} shared examples differ" in browser.find_element(By.ID, "cmp-dev").text
    assert browser.find_elements(By.CSS_SELECTOR, "pre.diff span")


def test_hostile_prompt_and_inputs_show_as_text_and_run_nothing(server, root, browser):
    cands = root["hostile"]["candidates"]
    for page in ("/", "/run/hostile", f"/run/hostile/prompt/{cands[1]['id']}",
                 f"/run/hostile/compare?a={cands[0]['id']}&b={cands[1]['id']}"):
        browser.get(server.url + page)
        assert browser.execute_script("return window.__xss === undefined"), page
        assert not browser.find_elements(By.CSS_SELECTOR, "main img"), page
        scripts = [s.get_attribute("src") for s in browser.find_elements(By.TAG_NAME, "script")]
        assert scripts == [server.url + "/static/ui.js"], page
    browser.get(server.url + f"/run/hostile/prompt/{cands[1]['id']}")
    assert HOSTILE_PROMPT.split("\n")[0] in browser.find_element(By.CSS_SELECTOR, "pre.prompt").text
    cells = " ".join(td.text for td in browser.find_elements(By.CSS_SELECTOR, "#split-dev td.text"))
    assert all(text in cells for text in HOSTILE_INPUTS)


def test_a_running_search_page_follows_its_log(server, root, browser):
    run = root["runs"] / "growing"
    with RunStore(run).locked():  # as a search holds it
        browser.get(server.url + "/run/growing")
        assert "Running" in browser.find_element(By.CSS_SELECTOR, "p.live").text
        time.sleep(2.5)  # the page has read the log's state once
        rec = json.loads((run / "candidates.jsonl").read_text().splitlines()[0])
        rec["candidate"] = {**rec["candidate"], "id": "0123456789ab", "prompt": "Newly logged: {input}", "strategy": "templates"}
        rec["evals_used"] += 4
        with open(run / "candidates.jsonl", "a") as f:
            f.write(json.dumps(rec) + "\n")
        wait(browser, lambda d: "Newly logged" in d.find_element(By.ID, "leaderboard").text, timeout=15)
