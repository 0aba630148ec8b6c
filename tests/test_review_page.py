"""The review page end to end in a real headless browser against `fakewatch serve`.

Playwright drives the system's chromium (Debian package `chromium`; Playwright's own browser
download is not used). Screenshots of each step go to the test's temporary folder.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.service_helpers import Deployment, submit
from tests.test_service_embedded import FAKEWATCH, free_port, group_alive, wait_ready

pytest_plugins = ("tests.service_fixtures",)
pytestmark = [pytest.mark.service, pytest.mark.timeout(300)]
BROWSER_ENV = "FAKEWATCH_TEST_CHROMIUM"  # a browser binary to use instead of `chromium` on PATH
VERDICT_TIMEOUT_MS = 120_000
KEY = "review-page-key-0123456789"
Serve = Callable[..., str]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    playwright_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed: pip install -e '.[dev]'"
    )
    executable = os.environ.get(BROWSER_ENV) or shutil.which("chromium")
    if executable is None:
        pytest.skip(f"no chromium found: apt-get install chromium, or set {BROWSER_ENV}")
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def serve(make_deployment: Any, tmp_path: Path) -> Iterator[Serve]:
    """serve(**settings) starts `fakewatch serve` (API + embedded worker) and returns its URL."""
    processes: list[subprocess.Popen[bytes]] = []

    def start(**overrides: Any) -> str:
        deployment: Deployment = make_deployment(**overrides)
        port = free_port()
        log_path = tmp_path / f"serve-{port}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [str(FAKEWATCH), "serve", "--port", str(port), "--log-level", "warning"],
                cwd=tmp_path, env=deployment.env(), stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        processes.append(process)
        url = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=url, timeout=30) as client:
            wait_ready(client, process, log_path)
        return url

    yield start
    for process in processes:
        if group_alive(process.pid):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@pytest.fixture
def shots(tmp_path: Path) -> Callable[[Any, str], None]:
    folder = tmp_path / "screenshots"
    folder.mkdir()

    def shoot(page: Any, name: str) -> None:
        page.screenshot(path=str(folder / f"{name}.png"), full_page=True)

    return shoot


def loaded(page: Any, selector: str) -> None:
    """Wait until the image at `selector` has decoded pixels."""
    page.wait_for_function(
        "s => { const i = document.querySelector(s); return i && i.complete && i.naturalWidth > 0 }",
        arg=selector, timeout=VERDICT_TIMEOUT_MS,
    )


def test_a_moderator_reviews_a_video_face_by_face(
    browser: Any, serve: Serve, service_video: Path, shots: Callable[[Any, str], None]
) -> None:
    url = serve()
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.goto(url + "/")
    shots(page, "1-empty")

    page.set_input_files("#file-input", str(service_video))
    page.fill("#frames-input", "6")
    page.click("#submit-button")
    page.wait_for_selector("#verdict:not([hidden])", timeout=VERDICT_TIMEOUT_MS)
    assert page.text_content("#verdict-label") in ("fake", "real")
    assert "6 frames sampled" in page.text_content("#verdict-file")
    assert page.locator("#models-body tr").count() == 2  # the tiny registry's two members
    assert page.get_attribute("#upload-progress", "value") == "1"

    with httpx.Client(base_url=url) as client:
        job = client.get("/jobs", params={"limit": 1}).json()["items"][0]
        result = client.get(f"/jobs/{job['id']}").json()["result"]
    people = result["identities"]
    rows = page.locator(".identity-row")
    assert rows.count() == len(people) >= 1
    faces_of_first = sum(
        1 for frame in result["frames"] for face in frame["faces"]
        if face["identity"] == people[0]["identity"]
    )
    first_row = rows.nth(0)
    assert first_row.locator("circle.point").count() == faces_of_first
    assert first_row.locator("line.threshold").count() == 1
    loaded(page, ".identity-row img")
    shots(page, "2-verdict")

    point = first_row.locator("circle.point").nth(1)
    point.focus()
    page.keyboard.press("Enter")  # keyboard-usable: a focused point opens like a click
    loaded(page, "#crop-img")
    assert f"Frame {point.get_attribute('data-frame')}" in page.text_content("#viewer-caption")
    page.click("#heatmap-button")
    page.wait_for_selector("#heatmap-img:not([hidden])", timeout=VERDICT_TIMEOUT_MS)
    loaded(page, "#heatmap-img")
    shots(page, "3-heatmap")

    page.click("#history-refresh")
    page.wait_for_function("document.querySelector('#history-body').textContent.includes('0.')")
    history = page.text_content("#history-body")
    assert job["upload"]["filename"] in history
    assert f"{result['label']} {result['probability']:.3f}" in history  # the list row's verdict
    assert job["verdict"] == {key: result[key] for key in job["verdict"]}


def test_an_invalid_file_shows_the_apis_message(
    browser: Any, serve: Serve, tmp_path: Path, shots: Callable[[Any, str], None]
) -> None:
    url = serve()
    notes = tmp_path / "notes.mp4"
    notes.write_text("these are meeting notes, not a video\n" * 20)
    with httpx.Client(base_url=url) as client:
        refused = submit(client, notes)
    assert refused.status_code == 415
    message = refused.json()["error"]["message"]

    page = browser.new_page()
    page.goto(url + "/")
    page.set_input_files("#file-input", str(notes))
    page.click("#submit-button")
    page.wait_for_selector("#error:not([hidden])")
    assert page.text_content("#error") == message
    shots(page, "invalid-file")


def test_the_page_asks_for_a_key_and_works_with_it(
    browser: Any, serve: Serve, face_image: Path, shots: Callable[[Any, str], None]
) -> None:
    url = serve(api_keys=[KEY])
    page = browser.new_page()
    page.goto(url + "/")
    page.wait_for_selector("#key-dialog[open]")
    assert "API key" in page.text_content("#key-reason")
    shots(page, "key-prompt")
    page.fill("#key-input", KEY)
    page.click("#key-dialog button[type=submit]")
    page.wait_for_selector("#key-dialog", state="hidden")
    assert page.evaluate("sessionStorage.getItem('fakewatch.apiKey')") == KEY
    assert page.evaluate("localStorage.length") == 0

    page.set_input_files("#file-input", str(face_image))
    page.click("#submit-button")
    page.wait_for_selector("#verdict:not([hidden])", timeout=VERDICT_TIMEOUT_MS)
    page.locator(".identity-row circle.point").first.click()
    loaded(page, "#crop-img")
    shots(page, "with-key")
