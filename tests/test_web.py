"""The web page for people: ``/`` (the timeline) and ``/actors/<id>``.

Two kinds of tests:

- Flask test-client tests (always run): the pages are HTML that load the script and
  the style sheet from ``/static``, the templates escape data, the static files are
  served and never put data into the page as HTML.
- Browser tests: a real ``timeline serve`` on a free port with the seed in a temporary
  SQLite store, driven by Debian's Chromium through Playwright. They skip, saying how
  to install what is missing, when ``/usr/bin/chromium`` or the ``playwright`` package
  is not there; under CI (``CI=true``) a missing browser fails instead. Screenshots go
  to ``test-artifacts/`` (git-ignored).
"""

from __future__ import annotations

import configparser
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import date
from pathlib import Path

import pytest

from tests.conftest import IN_CI
from timeline import transfer

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]

CEASEFIRE_2020 = "590708af-4c81-5e34-a917-f79a670c0b91"     # "2020", agree: a fuzzy year
OPERATION = "2b741642-e2b6-51bf-8a29-6c56bbd90fe5"          # 2023-09-19, assault: a day
OPERATION_QUOTE = "nachdem Aserbaidschan „Anti-Terror“-Operationen"
SCRIPT_TITLE = 'Probe <script>alert(1)</script> <img src=x onerror="window.__xss=1">'


# ---------------------------------------------------------------- Flask test client


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from api import create_app
    from events.chronicle import Chronicle

    url = f"sqlite:///{tmp_path_factory.mktemp('web')}/timeline.db"
    chronicle = Chronicle(env={"TIMELINE_DATABASE_URL": url})
    with transfer.SEED.open(encoding="utf-8") as lines:
        report = transfer.import_commands(chronicle, transfer.read_lines(lines), recorded_by="seed")
    chronicle.close()
    assert not report.problems
    app = create_app({"DATABASE_URL": url})
    app.extensions["timeline"].service.execute(
        "register_actor", {"id": "xss-probe", "name": "</title><script>alert(1)</script>", "kind": "other",
                           "names": {"de": "<b>fett</b>"}, "description": "<img src=x onerror=alert(1)>"},
        recorded_by="test")
    yield app
    app.extensions["timeline"].service.close()


@pytest.fixture
def client(app):
    return app.test_client()


def _inline_scripts(html: str) -> list[str]:
    return re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html)


def test_timeline_page_is_html_that_loads_the_script_and_the_style(client):
    response = client.get("/")
    assert response.status_code == 200
    assert response.content_type == "text/html; charset=utf-8"
    html = response.get_data(as_text=True)
    assert '<script src="/static/timeline.js" defer></script>' in html
    assert '<link rel="stylesheet" href="/static/timeline.css">' in html
    assert '<meta charset="utf-8">' in html and '<html lang="en">' in html
    assert 'data-page="timeline"' in html and 'id="chart"' in html and 'id="filters"' in html
    assert _inline_scripts(html) == []  # the CSP allows 'self': everything is under /static
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert "//cdn" not in html and "https://" not in html


def test_actor_page_renders_the_profile_in_every_language(client):
    response = client.get("/actors/armenia")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert '<script src="/static/timeline.js" defer></script>' in html
    assert '<link rel="stylesheet" href="/static/timeline.css">' in html
    assert 'data-page="actor"' in html and 'data-actor="armenia"' in html
    assert '<h1 id="actor-name">Armenia</h1>' in html
    assert '<td lang="hy">Հայաստան</td>' in html and '<td lang="ru">Армения</td>' in html
    assert 'id="at"' in html and _inline_scripts(html) == []


def test_templates_escape_data(client):
    html = client.get("/actors/xss-probe").get_data(as_text=True)
    assert "<script>alert(1)" not in html and "</title><script>" not in html
    assert "&lt;/title&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<b>fett</b>" not in html and "&lt;b&gt;fett&lt;/b&gt;" in html
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html


def test_an_unknown_actor_is_a_404_page_that_escapes_the_id(client):
    response = client.get("/actors/<img src=x onerror=alert(1)>")
    assert response.status_code == 404 and response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert "Unknown actor" in html
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html


def test_static_files_are_served(client):
    script = client.get("/static/timeline.js")
    style = client.get("/static/timeline.css")
    assert script.status_code == 200 and "javascript" in script.mimetype
    assert style.status_code == 200 and style.mimetype == "text/css"
    assert "fetch(" in script.get_data(as_text=True) and "/api/v1/timeline" in script.get_data(as_text=True)
    assert "DejaVu Sans" in style.get_data(as_text=True)
    script.close()
    style.close()


def test_the_script_never_inserts_html_and_loads_nothing_from_elsewhere():
    code = (ROOT / "api" / "static" / "timeline.js").read_text(encoding="utf-8")
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in code, sink
    css = (ROOT / "api" / "static" / "timeline.css").read_text(encoding="utf-8")
    urls = set(re.findall(r"https?://[^\s\"')]+", code + css))
    assert urls <= {"http://www.w3.org/2000/svg", "https://www.wikidata.org/wiki/"}, urls


def test_package_data_ships_the_templates_and_static_files():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    patterns = [p.strip() for p in config["options.package_data"]["api"].split(",")]
    shipped = {path for pattern in patterns for path in (ROOT / "api").glob(pattern)}
    for name in ("static/timeline.js", "static/timeline.css", "templates/base.html", "templates/timeline.html",
                 "templates/actor.html"):
        assert ROOT / "api" / name in shipped, name
    assert "playwright" in config["options.extras_require"]["test"]


# ---------------------------------------------------------------- a real server and a browser


def browser_or_skip() -> None:
    """Skips with how to install what is missing; under CI a missing browser fails."""
    missing = []
    if not Path(CHROMIUM).exists():
        missing.append(f"Chromium at {CHROMIUM} (install it with: apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the playwright package (install it with: pip install playwright; "
                       "no `playwright install` needed, the tests drive Debian's Chromium)")
    if missing:
        message = "browser tests need " + " and ".join(missing)
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _timeline_command() -> list[str]:
    script = Path(sys.executable).with_name("timeline")
    return [str(script)] if script.exists() else [sys.executable, "-m", "timeline.cli"]


def _call(method: str, url: str, body: object = None, token: str | None = None, headers=None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={
        "Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {}),
        **(headers or {})})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


class Server:
    def __init__(self, base: str, token: str):
        self.base = base
        self.token = token
        self.script_dev = ""
        self.retracted_dev = ""
        self.before_retraction = 0


def _development(title: str, when: str, **more) -> dict:
    return {"title": title, "category": "statement", "when": when, "certainty": "claimed", "language": "de",
            "actors": [{"actor": "armenia", "role": "speaker"}],
            "sources": [{"citation": "Testquelle", "quote": "ein Zitat für den Test", "language": "de"}], **more}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``timeline serve`` on a free port, the seed in a temporary SQLite store, a historian
    token created before it starts, and three developments recorded through the API."""
    browser_or_skip()
    directory = tmp_path_factory.mktemp("served")
    env = {**os.environ, "TIMELINE_DATABASE_URL": f"sqlite:///{directory}/timeline.db", "PYTHONUNBUFFERED": "1"}
    command = _timeline_command()
    subprocess.run([*command, "seed"], env=env, cwd=ROOT, check=True, capture_output=True, timeout=120)
    created = subprocess.run([*command, "token", "create", "web", "--role", "historian"], env=env, cwd=ROOT,
                             check=True, capture_output=True, text=True, timeout=60)
    token = created.stdout.strip().splitlines()[-1]
    port = _free_port()
    log = (directory / "serve.log").open("w")
    process = subprocess.Popen([*command, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
                                "--threads", "8"], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)

    def stop():
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        log.close()

    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            _call("GET", f"{base}/healthz")
            break
        except (urllib.error.URLError, ConnectionError, OSError):
            if process.poll() is not None or time.monotonic() > deadline:
                stop()
                pytest.fail(f"timeline serve did not start: {(directory / 'serve.log').read_text()[-2000:]}")
            time.sleep(0.2)
    try:
        served = Server(base, token)
        recorded = _call("POST", f"{base}/api/v1/developments",
                         _development(SCRIPT_TITLE, "2023-09-21", summary="<b>kein HTML</b>"), token)
        served.script_dev = recorded["id"]
        probe = _call("POST", f"{base}/api/v1/developments",
                      _development("Rücknahmeprobe: eine später zurückgezogene Meldung", "2023-09-22"), token)
        served.retracted_dev, served.before_retraction = probe["id"], probe["position"]
        _call("POST", f"{base}/api/v1/developments/{probe['id']}/retraction", {"reason": "Quelle hält nicht"},
              token, headers={"If-Match": f'"{probe["version"]}"'})
        yield served
    finally:
        stop()


@pytest.fixture(scope="module")
def browser(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, locale="en-GB")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.errors = errors
    yield page
    context.close()
    assert errors == [], errors


def shot(page, name: str, **options) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), **options)
    return path


def drawn(page) -> list[str]:
    """The distinct developments drawn on the chart, in DOM order."""
    return list(dict.fromkeys(page.eval_on_selector_all("#chart .dev", "nodes => nodes.map(n => n.dataset.id)")))


def load(page, url: str) -> None:
    page.goto(url)
    page.wait_for_function("() => { const s = document.getElementById('status');"
                           " return s && /drawn|Could not/.test(s.textContent); }")


def test_the_timeline_draws_developments_in_date_order(server, page):
    load(page, server.base + "/")
    assert "Could not" not in page.inner_text("#status")
    ids = drawn(page)
    assert CEASEFIRE_2020 in ids and OPERATION in ids

    ceasefire = page.locator(f'#chart .dev[data-id="{CEASEFIRE_2020}"][data-lane="actor:azerbaijan"]')
    operation = page.locator(f'#chart .dev[data-id="{OPERATION}"][data-lane="actor:azerbaijan"]')
    assert ceasefire.get_attribute("data-earliest") == "2020-01-01"
    assert operation.get_attribute("data-earliest") == "2023-09-19"
    assert ceasefire.locator(".shape").bounding_box()["x"] < operation.locator(".shape").bounding_box()["x"]
    # Within a lane the marks are in date order in the DOM, too.
    lane = page.eval_on_selector_all('#chart .lane[data-lane="actor:azerbaijan"] .dev',
                                     "nodes => nodes.map(n => [n.dataset.id, n.dataset.earliest])")
    order = [i for i, _ in lane]
    assert order.index(CEASEFIRE_2020) < order.index(OPERATION)
    assert [e for _, e in lane] == sorted(e for _, e in lane)

    # An estimate (the year 2020) is a hatched window, the operation a solid point.
    assert "fuzzy" in ceasefire.get_attribute("class") and "point" in operation.get_attribute("class")
    assert ceasefire.locator(".shape").get_attribute("fill").startswith("url(#hatch-")
    assert not operation.locator(".shape").get_attribute("fill").startswith("url(")
    assert ceasefire.locator(".shape").evaluate("n => getComputedStyle(n).strokeDasharray") != "none"
    assert operation.locator(".shape").evaluate("n => getComputedStyle(n).strokeDasharray") == "none"
    # Certainty is visible: a claimed development is hollow.
    claimed = page.locator('#chart .dev.cert-claimed:not(.fuzzy) .shape').first
    assert claimed.evaluate("n => getComputedStyle(n).fill") == "rgb(255, 255, 255)"
    shot(page, "timeline-all", full_page=True)

    load(page, server.base + "/?from=2023-08-25&to=2023-09-25")
    assert page.locator("#f-from").input_value() == "2023-08-25"
    shot(page, "timeline-september-2023", full_page=True)
    load(page, server.base + "/?from=2023-08-25&to=2023-09-25&lanes=category")
    assert page.locator("input[name=lanes][value=category]").is_checked()
    assert page.locator('#chart .lane[data-lane="category:assault"]').count() == 1
    shot(page, "timeline-by-category", full_page=True)

    # A range written as a month (the API takes those): drawn from what it finds.
    load(page, server.base + "/?from=2023-09&to=2023-09")
    assert OPERATION in drawn(page) and CEASEFIRE_2020 not in drawn(page)
    view = page.locator("#chart [data-view-from]")
    start, end = view.get_attribute("data-view-from"), view.get_attribute("data-view-to")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", start) and re.fullmatch(r"\d{4}-\d\d-\d\d", end)
    assert start <= "2023-09-19" <= end


def test_filtering_by_actor_updates_the_url_and_draws_fewer(server, page):
    load(page, server.base + "/")
    everything = drawn(page)
    page.select_option("#f-actor", "csto")
    page.click("#filters button[type=submit]")
    page.wait_for_url("**/?actor=csto")
    page.wait_for_function(f"() => new Set([...document.querySelectorAll('#chart .dev')].map(n => n.dataset.id)).size"
                           f" < {len(everything)}")
    filtered = drawn(page)
    assert 0 < len(filtered) < len(everything)
    assert page.locator('#chart .lane[data-lane="actor:csto"]').count() == 1

    # The URL restores the view: a fresh load shows the same filter and the same developments.
    load(page, page.url)
    assert page.eval_on_selector("#f-actor", "s => [...s.selectedOptions].map(o => o.value)") == ["csto"]
    assert drawn(page) == filtered
    # Filters combine: actor and free text.
    load(page, server.base + "/?actor=csto&q=OVKS")
    assert page.locator("#f-q").input_value() == "OVKS"
    assert 0 < len(drawn(page)) <= len(filtered)


def test_a_development_opens_with_its_sources_and_history(server, page):
    load(page, server.base + "/?actor=azerbaijan")
    mark = page.locator(f'#chart .dev[data-id="{OPERATION}"]').first
    mark.focus()
    assert mark.evaluate("n => n.getAttribute('tabindex')") == "0"
    assert "Anti-Terror" in mark.get_attribute("aria-label")
    page.keyboard.press("Enter")
    page.wait_for_selector("#details blockquote")
    assert OPERATION_QUOTE in page.inner_text("#details blockquote >> nth=0")
    assert page.get_attribute("#details blockquote >> nth=0", "lang") == "de"
    assert page.get_attribute("#details-title", "lang") == "de"
    assert f"dev={OPERATION}" in page.url
    assert page.locator('#details ul.actors a[href="/actors/azerbaijan"]').inner_text() == "Azerbaijan"
    assert "19 Sep 2023" in page.inner_text("#details")
    assert page.locator("#details .history-entry[data-type=recorded]").count() == 1
    shot(page, "timeline-details", full_page=True)
    page.keyboard.press("Escape")
    assert page.locator("#details").is_hidden()
    assert f"dev={OPERATION}" not in page.url

    # A shared link with ``dev`` opens the development at once.
    load(page, f"{server.base}/?dev={CEASEFIRE_2020}")
    page.wait_for_selector("#details blockquote")
    assert "estimate" in page.inner_text("#details")


def test_record_as_of_shows_a_retracted_development_and_its_retraction(server, page):
    load(page, server.base + "/?q=R%C3%BCcknahmeprobe")
    assert drawn(page) == []
    load(page, f"{server.base}/?q=R%C3%BCcknahmeprobe&as_of={server.before_retraction}")
    assert page.locator("#f-as-of").input_value() == str(server.before_retraction)
    assert drawn(page) == [server.retracted_dev]
    assert f"as it stood at log position {server.before_retraction}" in page.inner_text("#status")
    page.locator(f'#chart .dev[data-id="{server.retracted_dev}"] .shape').first.click()
    page.wait_for_selector("#details .history-entry[data-type=retracted]")
    history = page.inner_text("#details .history")
    assert "retracted" in history and "Quelle hält nicht" in history and "by web" in history
    assert "Retracted later" in page.inner_text("#details .badge")
    # A time with a zone works as the record time, too (here: one long after the retraction,
    # beyond the record's end, so the record as it stands now, and the status says when).
    load(page, f"{server.base}/?q=R%C3%BCcknahmeprobe&as_of=2999-01-01T00:00:00Z")
    status = page.inner_text("#status")
    assert drawn(page) == [] and "as it stood at 20" in status and "2999" not in status
    load(page, f"{server.base}/?as_of=kein-datum")
    assert "Could not load the timeline" in page.inner_text("#status") and "as_of" in page.inner_text("#status")
    shot(page, "timeline-as-of-retraction", full_page=True)


def test_keyboard_zooms_and_pans(server, page):
    load(page, server.base + "/")

    def span() -> int:
        view = page.eval_on_selector("svg.timeline-svg", "s => [s.dataset.viewFrom, s.dataset.viewTo]")
        return (date.fromisoformat(view[1]) - date.fromisoformat(view[0])).days

    whole = span()
    page.focus("#chart")
    page.keyboard.press("+")
    page.keyboard.press("+")
    page.wait_for_timeout(100)
    zoomed = span()
    assert zoomed < whole / 3
    before = page.eval_on_selector("svg.timeline-svg", "s => s.dataset.viewFrom")
    page.keyboard.press("ArrowLeft")
    page.wait_for_timeout(100)
    assert page.eval_on_selector("svg.timeline-svg", "s => s.dataset.viewFrom") < before
    page.keyboard.press("-")
    page.wait_for_timeout(100)
    assert span() > zoomed
    # Ctrl + wheel zooms too, down to days; a plain wheel leaves the zoom alone.
    box = page.locator("#chart").bounding_box()
    page.mouse.move(box["x"] + box["width"] - 40, box["y"] + 200)
    unzoomed = span()
    page.mouse.wheel(0, -400)
    page.wait_for_timeout(100)
    assert span() == unzoomed
    page.locator("#chart").scroll_into_view_if_needed()
    box = page.locator("#chart").bounding_box()
    page.mouse.move(box["x"] + box["width"] - 40, box["y"] + 100)
    page.keyboard.down("Control")
    for _ in range(30):
        page.mouse.wheel(0, -400)
    page.keyboard.up("Control")
    page.wait_for_timeout(200)
    assert span() <= 5
    ticks = page.eval_on_selector_all("svg.timeline-svg .tick", "ns => ns.map(n => n.textContent)")
    assert all(re.match(r"^\d{1,2} [A-Z][a-z]{2}", t) for t in ticks), ticks


def test_actor_attributes_follow_the_chosen_date(server, page):
    page.goto(server.base + "/actors/armenia?at=2023-09-01")
    cell = page.locator('#attributes tr[data-attribute="membership.csto"] td.value')
    cell.wait_for()
    assert cell.inner_text() == "member"
    page.fill("#at", "2023-09-30")
    page.wait_for_function("() => document.querySelector('#attributes tr[data-attribute=\"membership.csto\"] td.value')"
                           "?.textContent === 'representative_withdrawn'")
    assert "at=2023-09-30" in page.url
    # The relation charts are computed in the page from the actor's timeline and the
    # vocabulary's weights; on the chosen date they agree with the API's scores.
    state = _call("GET", f"{server.base}/api/v1/actors/armenia/state?at=2023-09-30")
    charts = page.eval_on_selector_all("#relations .relation", "items => items.map(i => "
                                       "[i.dataset.actor, i.querySelector('svg.score-chart').dataset.scoreAt])")
    assert len(charts) == len(state["relations"])
    for other, score in charts:
        assert float(score) == state["relations"][other]["score"], other
    # Every language renders, marked with its language.
    assert page.inner_text('#p-names td[lang="hy"]') == "Հայաստան"
    assert page.inner_text('#p-names td[lang="ru"]') == "Армения"
    shot(page, "actor-armenia", full_page=True)


def test_a_title_with_a_script_is_shown_as_text(server, page):
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    load(page, server.base + "/?q=Probe")
    assert server.script_dev in drawn(page)
    mark = page.locator(f'#chart .dev[data-id="{server.script_dev}"]').first
    assert "<script>alert(1)</script>" in mark.locator("title").text_content()
    assert "<script>alert(1)</script>" in mark.get_attribute("aria-label")
    mark.locator(".shape").click()
    page.wait_for_selector("#details-title")
    assert page.text_content("#details-title") == SCRIPT_TITLE
    assert page.text_content("#details .summary") == "<b>kein HTML</b>"
    assert page.locator("#chart script, #details script, #details img, #details b, #list script").count() == 0
    page.click("details.listing summary")
    assert SCRIPT_TITLE in page.inner_text("#list")
    shot(page, "script-title-as-text", full_page=True)
    page.goto(server.base + "/actors/armenia?at=2023-09-30")
    page.locator("#actor-developments li").first.wait_for()
    assert SCRIPT_TITLE in page.inner_text("#actor-developments")
    page.wait_for_timeout(300)
    assert dialogs == []
    assert page.evaluate("() => window.__xss") is None
