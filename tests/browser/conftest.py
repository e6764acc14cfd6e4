"""Real-browser fixtures: Debian's Chromium driven by Playwright against pytest-django's live server.

The tests skip only when /usr/bin/chromium is missing; with REPLAYWEB_REQUIRE_BROWSER=1 (CI) a
missing browser fails them instead. Every page a test opens is watched: a console error, an
uncaught exception, a failed request or an unexpected 4xx/5xx answer fails the test, and a
screenshot of the page is kept in test-artifacts/screenshots/<test>.png.
"""

import os
import re
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("REPLAYWEB_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
PASSWORD = "browser-pass-123"
TIMEOUT_MS = 15_000


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.browser)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)  # lets `page` see whether the test itself failed
    return report


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium per test module (Playwright's event loop must not outlive the module)."""
    if not CHROMIUM.exists():
        message = f"no Chromium at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("REPLAYWEB_REQUIRE_BROWSER") == "1":
            pytest.fail(message + "; REPLAYWEB_REQUIRE_BROWSER=1 makes this a failure", pytrace=False)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an asyncio loop running on this thread, which makes Django refuse
    # ORM calls from the test ("async context"). The test thread only makes fixtures; the live
    # server answers from its own thread.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    pw = sync_playwright().start()
    try:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
    finally:
        pw.stop()
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


class Watch:
    """What went wrong on the pages of one test: console errors, page errors, failed requests."""

    def __init__(self):
        self.problems: list[str] = []
        self.allowed: list[tuple[re.Pattern, int]] = []

    def allow(self, url_pattern: str, status: int) -> None:
        """An answer the test expects to be an error (a refused upload is a 400)."""
        self.allowed.append((re.compile(url_pattern), status))

    def attach(self, page) -> None:
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.problems.append(f"uncaught exception: {exc}"))
        page.on("requestfailed", self._failed)
        page.on("response", self._response)

    def _expected(self, url: str, status: int) -> bool:
        return any(p.search(url) and s == status for p, s in self.allowed)

    def _console(self, msg) -> None:
        if msg.type != "error":
            return
        url = msg.location.get("url", "")
        status = re.search(r"status of (\d+)", msg.text)
        if msg.text.startswith("Failed to load resource") and status and self._expected(url, int(status[1])):
            return  # the answer itself is judged in _response
        self.problems.append(f"console error: {msg.text} ({url})")

    def _failed(self, request) -> None:
        failure = request.failure or ""
        # A download and a request superseded by a newer one (htmx's hx-sync, a navigation) are
        # aborted by the browser on purpose.
        if "ERR_ABORTED" in failure:
            return
        self.problems.append(f"request failed: {request.method} {request.url}: {failure}")

    def _response(self, response) -> None:
        if response.status < 400:
            return
        if self._expected(response.url, response.status):
            return
        self.problems.append(f"HTTP {response.status}: {response.request.method} {response.url}")

    def check(self) -> None:
        problems, self.problems = self.problems, []
        assert not problems, "\n".join(problems)


@pytest.fixture
def watch():
    return Watch()


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    # The live server hashes the login form's password: PBKDF2's cost buys nothing in a test.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def browser_user(django_user_model, _fast_passwords):
    return django_user_model.objects.create_user("walker", password=PASSWORD)


@pytest.fixture
def context(browser, live_server, request):
    ctx = browser.new_context(
        base_url=live_server.url, accept_downloads=True, viewport={"width": 1360, "height": 900}
    )
    ctx.set_default_timeout(TIMEOUT_MS)
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)  # expect() keeps its own 5 s default otherwise: too short on a loaded CI
    yield ctx
    ctx.close()


def shot_path(request, suffix: str = "") -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name + (f"-{suffix}" if suffix else ""))
    return SCREENSHOTS / f"{name}.png"


@pytest.fixture
def shot(request):
    """shot(page, "step") saves test-artifacts/screenshots/<test>-step.png."""

    def _shot(page, suffix: str = "") -> Path:
        path = shot_path(request, suffix)
        page.screenshot(path=str(path), full_page=True)
        return path

    return _shot


@pytest.fixture
def page(context, watch, request, browser_user):
    """A page logged in as `browser_user` through the real login form, watched for errors."""
    pg = context.new_page()
    watch.attach(pg)
    pg.goto("/login/")
    pg.fill("input[name=username]", browser_user.username)
    pg.fill("input[name=password]", PASSWORD)
    with pg.expect_navigation():
        pg.click("form button[type=submit]")
    assert not pg.url.rstrip("/").endswith("/login"), "the login form did not log in"
    yield pg
    if not pg.is_closed():
        pg.screenshot(path=str(shot_path(request)), full_page=True)
    call = getattr(request.node, "rep_call", None)
    if call is not None and not call.passed:
        if watch.problems:  # already failing: show the page's problems beside the failure
            print("page problems:", *watch.problems, sep="\n  ")
        return
    watch.check()


@pytest.fixture
def site_pages(browser_user, samples_dir):
    """Every kind of page of the site, as (name, path), over the sample runs of each kind.

    For the layout and accessibility sweeps: two DynoAI runs with their output folders (cells, tables,
    compare), the debt-auction session and its replay (trace, state, LLM panel, diff), a study log.
    """
    from viewer.ingest import Source, run_ingest

    def folder(path):
        sources = [Source(f"{path.name}/{p.name}", path=p, group=path.name) for p in sorted(path.iterdir())]
        return next(r.run for r in run_ingest(owner=browser_user, sources=sources) if r.status == "imported")

    def one(relpath):
        path = samples_dir / relpath
        (result,) = run_ingest(owner=browser_user, sources=[Source(path.name, path=path)])
        return result.run

    dyno = folder(samples_dir / "dynoai/runs/large200k_s2_c7")
    dyno2 = folder(samples_dir / "dynoai/runs/large200k_s4_c10")
    session = one("session/session_debt_auction_ambush.jsonl")
    replayed = one("session/session_debt_auction_ambush_replay.jsonl")
    study = one("study/2024-03-05T18-22-30.004512-0000000007-gc-104523-41233.study.log")
    noted(dyno, browser_user)
    return [
        ("runs", "/"),
        ("run-dynoai", f"/runs/{dyno.pk}/"),
        ("run-session", f"/runs/{session.pk}/"),
        ("run-study", f"/runs/{study.pk}/"),
        ("decision-dynoai", f"/runs/{dyno.pk}/decisions/10/"),
        ("decision-session", f"/runs/{session.pk}/decisions/3/"),
        ("cells", f"/runs/{dyno.pk}/cells/"),
        ("replay-dynoai", f"/runs/{dyno.pk}/replay/"),
        ("replay-session", f"/runs/{session.pk}/replay/"),
        ("replay-study", f"/runs/{study.pk}/replay/"),
        ("trace", f"/runs/{session.pk}/trace/"),
        ("state", f"/runs/{session.pk}/state/"),
        ("llm", f"/runs/{session.pk}/llm/"),
        ("tables", f"/runs/{dyno.pk}/tables/"),
        ("compare", f"/compare/?run={dyno.pk}&run={dyno2.pk}"),
        ("diff-session", f"/diff/?a={session.pk}&b={replayed.pk}"),
        ("diff-dynoai", f"/diff/?a={dyno.pk}&b={dyno2.pk}"),
        ("tokens", "/tokens/"),
        ("notes", f"/runs/{dyno.pk}/notes/?seq=10"),
        ("share", shared_page(session, browser_user)),
    ]


def shared_page(run, owner) -> str:
    """The run's share page with a group share and a public link listed (a long URL at 390 px)."""
    from django.contrib.auth.models import Group

    from viewer import shares

    Group.objects.get_or_create(name="tuners")
    shares.share(run, by=owner, group="tuners", can_annotate=True)
    shares.create_link(run, by=owner)
    return f"/runs/{run.pk}/share/"


def noted(run, owner) -> None:
    """Notes where the sweeps look: a long one with labels on decision 10 (its page, its table row, the
    replay), one on the whole run (the run page's card)."""
    from viewer import notes

    text = "Lean spike **here**: check `O2` first. " + "A long line without a break " * 12 + "\n\n- one\n- two"
    notes.add(run, owner, seq=10, text=text, labels=["suspect", "regression", "needs-a-second-look"])
    notes.add(run, owner, text="Tuned with the new injectors", labels=["ok"])
