"""The web app (`motionpatches.app`): its pieces through Gradio's Python side, then the whole app in a real browser.

The unit tests call the functions the page's events call (found by their api_name in the Blocks) on a small
fake with `MotionIndex`'s interface, so they pin down what the app shows whatever the index ranks. The browser
tests start the app on 127.0.0.1 over a real `MotionIndex` of demo motions embedded by a tiny random model,
drive Debian's headless Chromium with Selenium, and compare what the page shows with the index's own answers.
"""

import inspect
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from functools import partial
from typing import NamedTuple

import datasets
import gradio as gr
import numpy as np
import pytest
from PIL import Image

from motionpatches import app as web
from motionpatches.processors.skeletons import resolve_skeleton
from motionpatches.skipped import read_positions
from motionpatches.training.data.demo import generate_demo_motions
from motionpatches.visualization import skeleton_animation

# Debian's packages (apt-get install chromium chromium-driver), which .ci/run installs
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
CHROMIUM_FLAGS = (
    "--headless --no-sandbox --disable-gpu --disable-dev-shm-usage --disable-background-networking "
    "--disable-component-update --disable-sync --no-first-run --window-size=1280,2400"
).split()
QUERY = "a person waves the left hand"
# small and sparse drawings: the browser tests check that animations arrive, not how they look
small_render = partial(skeleton_animation, size=64, stride=8)


class SearchHit(NamedTuple):
    row: int
    id: str
    score: float
    captions: list[str]
    path: str | None


class FakeIndex:
    """`MotionIndex`'s interface over demo motions, ranking by words shared with the captions (text) and by
    length (motions), so every answer is easy to predict."""

    def __init__(self, num_motions: int = 10):
        self.motions = generate_demo_motions(num_motions, seed=3)
        self.rows = datasets.Dataset.from_dict(
            {
                "id": [m["id"] for m in self.motions],
                "path": [None] * num_motions,
                "fps": [20.0] * num_motions,
                "num_frames": [len(m["motion"]) for m in self.motions],
                "captions": [m["captions"] for m in self.motions],
            }
        )
        self.info = {"processor": {"fps": 20.0}}
        self.skeleton = resolve_skeleton("humanml3d")
        self.file_options_seen = []

    def __len__(self):
        return len(self.motions)

    def motion(self, row):
        return self.motions[row]["motion"]

    def _hits(self, scores, k):
        order = np.argsort(-np.asarray(scores, dtype=float), kind="stable")[:k]
        return [
            SearchHit(int(r), self.motions[r]["id"], float(scores[r]), self.motions[r]["captions"], None) for r in order
        ]

    def _frames(self, motion, file_options):
        self.file_options_seen.append(file_options)
        return len(read_positions(motion, file_options, 22).values if isinstance(motion, str) else motion)

    def search_text(self, texts, k):
        words = [set(" ".join(m["captions"]).split()) for m in self.motions]
        return [self._hits([len(set(text.split()) & w) for w in words], k) for text in texts]

    def search_motion(self, motions, k, *, file_options=None, motion_fps=None):
        frames = [self._frames(m, file_options) for m in motions]
        return [self._hits([-abs(n - f) for n in self.rows["num_frames"]], k) for f in frames]

    def search_captions(self, motions, k, *, captions=None, file_options=None):
        gallery = sorted({c for m in self.motions for c in m["captions"]})
        results = []
        for motion in motions:
            frames = self._frames(motion, file_options)
            results.append(sorted(((c, 1 / (1 + abs(len(c) - frames))) for c in gallery), key=lambda p: -p[1])[:k])
        return results


class CountingRender:
    """The real renderer, counting the drawings it is asked for."""

    def __init__(self):
        self.calls = 0

    def __call__(self, motion, skeleton, path, fps=None):
        self.calls += 1
        return small_render(motion, skeleton, path, fps=fps)


@pytest.fixture
def fake():
    return FakeIndex()


def finished(function):
    """`function` returning what the page shows once it is done: the searches stream their grid as it is drawn,
    and the last outputs they yield are the ones that stay."""

    def call(*args):
        outputs = function(*args)
        return list(outputs)[-1] if inspect.isgenerator(outputs) else outputs

    return call


def event_function(blocks, api_name):
    return next(f.fn for f in blocks.fns.values() if f.api_name == api_name)


@pytest.fixture
def page(fake, tmp_path):
    """`page(api_name)` -> the function that event of a fresh app over `fake` calls, as `finished` (the stream
    itself with `stream=True`); `page("render")` the renderer, `page("blocks")` the app."""
    render = CountingRender()
    blocks = web.build_app(fake, top_k=3, render=render, cache_dir=str(tmp_path / "renders"))

    def get(name, stream=False):
        if name in ("render", "blocks"):
            return {"render": render, "blocks": blocks}[name]
        function = event_function(blocks, name)
        return function if stream else finished(function)

    return get


@pytest.fixture
def motion_file(tmp_path):
    path = tmp_path / "query.npy"
    np.save(path, generate_demo_motions(1, seed=11)[0]["motion"])
    return str(path)


@pytest.fixture
def unreadable_file(tmp_path):
    path = tmp_path / "broken.npy"
    path.write_bytes(b"not a numpy file")
    return str(path)


def demo_rows(motions) -> datasets.Dataset:
    """Index rows as the demo dataset stores them: an Array3D motion reads back in one piece, not value by value."""
    features = datasets.Features(
        {
            "id": datasets.Value("string"),
            "motion": datasets.Array3D(shape=(None, 22, 3), dtype="float32"),
            "captions": datasets.List(datasets.Value("string")),
        }
    )
    return datasets.Dataset.from_dict({key: [m[key] for m in motions] for key in features}, features=features)


def ids_of(items) -> list[str]:
    return [caption.split(" · ")[0] for _, caption in items]


def is_animated_gif(path) -> bool:
    with Image.open(path) as image:
        return image.format == "GIF" and image.n_frames > 1


# ----------------------------------------------------------------------------- the pieces, without a browser
def test_text_search_fills_the_grid_with_the_index_answer_in_order(page, fake):
    items, message = page("search_text")(QUERY, 3)
    hits = fake.search_text([QUERY], 3)[0]
    assert ids_of(items) == [hit.id for hit in hits]
    assert [caption for _, caption in items] == [web.caption_text(hit) for hit in hits]
    assert all(is_animated_gif(path) for path, _ in items)
    assert message.startswith(f'Top 3 of {len(fake)} motions for "{QUERY}"')
    # what the Gallery sends to the page: the same files and captions
    gallery = next(b for b in page("blocks").blocks.values() if isinstance(b, gr.Gallery))
    sent = gallery.postprocess(items).model_dump()
    assert [entry["caption"] for entry in sent] == [caption for _, caption in items]


def test_caption_carries_id_score_and_every_caption():
    hit = SearchHit(4, "demo_000004", 0.81234, ["a person walks", "someone strolls"], None)
    assert web.caption_text(hit) == "demo_000004 · score 0.812 · a person walks | someone strolls"
    assert web.caption_text(hit._replace(captions=[])) == "demo_000004 · score 0.812"


def test_the_grid_grows_while_new_animations_are_drawn_and_comes_whole_once_drawn(page):
    stream = page("search_text", stream=True)
    first = list(stream(QUERY, 3))
    assert [ids_of(grid) for grid, _ in first] == [ids_of(first[-1][0])] * 4  # the ranking at once
    assert [sum(path.endswith(".gif") for path, _ in grid) for grid, _ in first] == [0, 1, 2, 3]
    assert [message.split(")")[-1] for _, message in first] == [f". Drawing {i} of 3…" for i in (1, 2, 3)] + ["."]
    assert list(stream(QUERY, 3)) == [first[-1]]


def test_each_motion_is_drawn_once_and_then_reused(page):
    first, _ = page("search_text")(QUERY, 3)
    again, _ = page("search_text")(QUERY, 3)
    assert page("render").calls == 3
    assert [path for path, _ in again] == [path for path, _ in first]


@pytest.mark.parametrize("query", ["", "   ", None])
def test_an_empty_query_is_a_message_and_an_empty_grid(page, query):
    items, message = page("search_text")(query, 3)
    assert items == []
    assert message.startswith("Type a description of a motion first")
    assert page("render").calls == 0


@pytest.mark.parametrize("k", [0, -2, 2.5, None])
def test_a_bad_k_is_a_message(page, k):
    items, message = page("search_text")(QUERY, k)
    assert items == [] and message.startswith("k must be a whole number of at least 1")


def test_k_beyond_the_index_shows_everything_with_a_notice(page, fake):
    items, message = page("search_text")(QUERY, len(fake) + 5)
    assert len(items) == len(fake)
    assert message.startswith(f"k = {len(fake) + 5} is more than the {len(fake)} indexed motions")


def test_an_uploaded_motion_gives_similar_motions_and_its_own_picture(page, fake, motion_file):
    shown, items, message = page("search_motion")(motion_file, 4)
    assert ids_of(items) == [hit.id for hit in fake.search_motion([motion_file], 4)[0]]
    assert is_animated_gif(shown)
    assert message == f"Top 4 of {len(fake)} motions like {os.path.basename(motion_file)}."


def test_an_unreadable_upload_is_a_message_naming_the_file_only(page, unreadable_file):
    shown, items, message = page("search_motion")(unreadable_file, 4)
    assert (shown, items) == (None, [])
    assert "broken.npy" in message and "no .npy header" in message
    assert os.path.dirname(unreadable_file) not in message  # Gradio's upload folder says nothing to the user
    assert "Traceback" not in message


def test_no_upload_is_a_message(page):
    assert page("search_motion")(None, 4) == (None, [], "Upload a motion file first (.npy / .bvh / .npz).")


def test_an_indexed_motion_gets_its_best_captions(page, fake):
    shown, rows, message = page("search_captions")(None, fake.motions[2]["id"], 3)
    expected = fake.search_captions([fake.motion(2)], 3)[0]
    assert rows == [[caption, round(score, 4)] for caption, score in expected]
    assert is_animated_gif(shown)
    assert message == f"Top 3 captions for {fake.motions[2]['id']}."


def test_an_upload_wins_over_a_picked_motion(page, fake, motion_file):
    _, rows, message = page("search_captions")(motion_file, fake.motions[2]["id"], 2)
    assert [caption for caption, _ in rows] == [c for c, _ in fake.search_captions([motion_file], 2)[0]]
    assert message == "Top 2 captions for query.npy."


def test_an_indexed_motion_of_another_frame_rate_is_described_at_the_models_rate(page, fake):
    fake.rows = fake.rows.map(lambda row, i: {"fps": 40.0 if i == 2 else 20.0}, with_indices=True)
    _, rows, _ = page("search_captions")(None, fake.motions[2]["id"], 3)
    half_as_long = fake.motion(2)[::2]
    assert rows == [[caption, round(score, 4)] for caption, score in fake.search_captions([half_as_long], 3)[0]]


@pytest.mark.parametrize(
    ("picked", "expected"),
    [(None, "Upload a motion file or pick an indexed motion first."), ("nope", "No indexed motion has the id 'nope'.")],
)
def test_describing_nothing_or_an_unknown_id_is_a_message(page, picked, expected):
    assert page("search_captions")(None, picked, 3) == (None, [], expected)


def test_an_unexpected_failure_is_a_message_and_a_logged_traceback(fake, tmp_path, caplog):
    def broken(texts, k):
        raise RuntimeError("the index file went away")

    fake.search_text = broken
    blocks = web.build_app(fake, render=small_render, cache_dir=str(tmp_path))
    search = finished(event_function(blocks, "search_text"))
    assert search(QUERY, 3) == ([], "Could not search: the index file went away")
    assert "Traceback" in caplog.text and "RuntimeError" in caplog.text


def test_uploads_are_read_with_the_apps_file_options(fake, tmp_path, motion_file):
    from motionpatches import MotionFileOptions

    options = MotionFileOptions(bvh_scale=0.01)
    blocks = web.build_app(fake, render=small_render, file_options=options, cache_dir=str(tmp_path))
    finished(event_function(blocks, "search_motion"))(motion_file, 2)
    assert fake.file_options_seen == [options]


def test_an_empty_index_or_top_k_below_one_is_refused(fake):
    with pytest.raises(ValueError, match="at least 1"):
        web.build_app(fake, top_k=0)
    fake.motions = []
    with pytest.raises(ValueError, match="holds no motions"):
        web.build_app(fake)


def test_the_app_turns_analytics_off_whatever_the_environment(fake, monkeypatch):
    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "True")
    assert web.build_app(fake).analytics_enabled is False


# ----------------------------------------------------------------------------- run(): load or build, then launch
def app_args(index_dir, model_dir=None, **extra):
    from types import SimpleNamespace

    defaults = dict(model=model_dir and str(model_dir), index=str(index_dir), host="127.0.0.1", port=7860, top_k=8)
    return SimpleNamespace(**{**defaults, "dataset_name": None, "trust_remote_code": False, **extra})


def test_run_without_an_index_or_a_dataset_says_how_to_build_one(tmp_path):
    with pytest.raises(FileNotFoundError, match="motionpatches index --model M"):
        web.run(app_args(tmp_path / "missing"))


def test_run_builds_a_missing_demo_index_saves_it_and_launches_locally(saved_tiny_model, tmp_path, monkeypatch):
    from motionpatches.index import MotionIndex
    from motionpatches.training.data import catalog

    small = partial(catalog.load_named_dataset, demo_sizes=(6, 2, 2))  # not all 1,500 in a unit test
    monkeypatch.setattr(catalog, "load_named_dataset", small)
    launched = {}
    monkeypatch.setattr(gr.Blocks, "launch", lambda self, **kwargs: launched.update(kwargs, app=self))
    index_dir = tmp_path / "demo-index"
    assert web.run(app_args(index_dir, saved_tiny_model, dataset_name="demo", port=7999)) == 0
    saved = MotionIndex.load(str(index_dir))
    assert len(saved) == 10 and saved.rows["id"][0] == "demo_000000"
    assert launched["server_name"] == "127.0.0.1" and launched["server_port"] == 7999
    assert launched["share"] is False and launched["ssr_mode"] is False
    # a second start loads the saved index instead of building again
    monkeypatch.setattr(MotionIndex, "build", None)
    assert web.run(app_args(index_dir, saved_tiny_model, dataset_name="demo")) == 0


# ----------------------------------------------------------------------------- the app in a real browser
MISSING = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.path.exists(path)]
needs_browser = pytest.mark.skipif(
    bool(MISSING),
    reason=f"no headless browser here: {' and '.join(MISSING)} not installed "
    "(Debian/Ubuntu: apt-get install chromium chromium-driver, which .ci/run does)",
)


@pytest.fixture(scope="module")
def connections():
    """Every host this process looks up or connects to from here on (the app's server runs in it); a lookup
    of a remote name counts even when it fails, as it does offline, before any connection is tried."""
    hosts = set()
    connect, lookup = socket.socket.connect, socket.getaddrinfo

    def recording_connect(sock, address):
        hosts.add(address[0] if isinstance(address, tuple) else "unix socket")
        return connect(sock, address)

    def recording_lookup(host, *args, **kwargs):
        hosts.add(host.decode() if isinstance(host, bytes) else host)
        return lookup(host, *args, **kwargs)

    socket.socket.connect, socket.getaddrinfo = recording_connect, recording_lookup
    yield hosts
    socket.socket.connect, socket.getaddrinfo = connect, lookup


@pytest.fixture(scope="module")
def search_index(tiny_model):
    """A real `MotionIndex` of 16 demo motions embedded by a tiny random model."""
    from motionpatches.index import MotionIndex

    motions = generate_demo_motions(16, seed=5)
    model, processor = tiny_model([c for m in motions for c in m["captions"]], num_frames=64)
    return MotionIndex.build(model, processor, demo_rows(motions))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(search_index, connections, tmp_path_factory):
    """The app over `search_index`, served from a thread of this process: `(url, k)`."""
    k = 4
    blocks = web.build_app(search_index, top_k=k, render=small_render, cache_dir=str(tmp_path_factory.mktemp("gifs")))
    blocks.launch(
        server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True, ssr_mode=False
    )
    yield blocks.local_url, k
    blocks.close()


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    # every request the page makes, and the console, where a resource that failed to load is an error
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


def wait(driver, condition, timeout=30):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(condition)


def css(driver, selector):
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, selector)


def open_tab(driver, url, name):
    driver.get(url)
    tab = wait(driver, lambda d: [t for t in css(d, "[role=tab]") if t.text == name])[0]
    tab.click()


def message_of(driver, status_id, previous=None):
    """The message once the search is done (while animations are drawn, it ends "Drawing i of k…"); with
    `previous`, the box's last message, once it has been replaced (the old one stays until the server answers)."""

    def final(d):
        message = css(d, f"#{status_id} textarea")[0].get_property("value")
        return message if message and "Drawing" not in message and message != previous else None

    return wait(driver, final)


def shown_results(driver, grid_id):
    """(ids, captions) of the grid's cells, once every animation has loaded."""
    images = css(driver, f"#{grid_id} .gallery-item img")
    loaded = "return arguments[0].every(img => img.complete && img.naturalWidth > 0)"
    wait(driver, lambda d: d.execute_script(loaded, images))
    assert all(image.get_attribute("src").endswith(".gif") for image in images)  # animations, no stand-ins
    captions = [label.text for label in css(driver, f"#{grid_id} .gallery-item .caption-label")]
    assert len(images) == len(captions)
    return [caption.split(" · ")[0] for caption in captions], captions


def upload(driver, input_id, path):
    css(driver, f"#{input_id} input[type=file]")[0].send_keys(path)
    wait(driver, lambda d: css(d, f"#{input_id} td.filename"))  # the upload has reached the server


@pytest.mark.slow
@needs_browser
def test_browser_text_query_shows_k_animations_with_the_index_ids(server, browser, search_index):
    url, k = server
    browser.get(url)
    box = wait(browser, lambda d: css(d, "#query textarea"))[0]
    box.send_keys(QUERY)
    css(browser, "#search-text")[0].click()
    assert message_of(browser, "text-status").startswith(f'Top {k} of {len(search_index)} motions for "{QUERY}"')
    ids, captions = shown_results(browser, "text-results")
    expected = search_index.search_text([QUERY], k)[0]
    assert ids == [hit.id for hit in expected]
    assert captions[0] == web.caption_text(expected[0])


@pytest.mark.slow
@needs_browser
def test_browser_enter_with_another_k_and_an_empty_query(server, browser, search_index):
    from selenium.webdriver.common.keys import Keys

    url, _ = server
    browser.get(url)
    wait(browser, lambda d: css(d, "#query textarea"))[0].send_keys(Keys.ENTER)
    refusal = message_of(browser, "text-status")
    assert refusal.startswith("Type a description of a motion first")
    assert css(browser, "#text-results .gallery-item img") == []
    k_box = css(browser, "#text-k input[type=number]")[0]
    k_box.clear()
    k_box.send_keys("6", Keys.TAB)
    css(browser, "#query textarea")[0].send_keys("someone jumps up and down", Keys.ENTER)
    assert message_of(browser, "text-status", previous=refusal).startswith("Top 6 of")
    ids, _ = shown_results(browser, "text-results")
    assert ids == [hit.id for hit in search_index.search_text(["someone jumps up and down"], 6)[0]]


@pytest.mark.slow
@needs_browser
def test_browser_upload_finds_similar_motions_and_reports_a_bad_file(
    server, browser, search_index, motion_file, unreadable_file
):
    url, k = server
    open_tab(browser, url, "motion → motions")
    upload(browser, "motion-upload", motion_file)
    css(browser, "#search-motion")[0].click()
    assert message_of(browser, "motion-status") == f"Top {k} of {len(search_index)} motions like query.npy."
    ids, _ = shown_results(browser, "motion-results")
    assert ids == [hit.id for hit in search_index.search_motion([motion_file], k)[0]]

    open_tab(browser, url, "motion → motions")
    upload(browser, "motion-upload", unreadable_file)
    css(browser, "#search-motion")[0].click()
    message = message_of(browser, "motion-status")
    assert "broken.npy" in message and "Traceback" not in message
    assert css(browser, "#motion-results .gallery-item img") == []


@pytest.mark.slow
@needs_browser
def test_browser_describes_an_uploaded_motion_with_captions(server, browser, search_index, motion_file):
    url, k = server
    open_tab(browser, url, "motion → captions")
    upload(browser, "caption-upload", motion_file)
    css(browser, "#search-captions")[0].click()
    assert message_of(browser, "caption-status") == f"Top {k} captions for query.npy."
    expected = [caption for caption, _ in search_index.search_captions([motion_file], k)[0]]
    first_column = "#caption-results [role=gridcell][data-col='0']"
    wait(browser, lambda d: [cell.text for cell in css(d, first_column)] == expected)


@pytest.mark.slow
@needs_browser
def test_browser_page_and_server_stay_on_this_machine(server, browser, connections):
    """Run after the other browser tests: by now every tab has been used. Nothing the page loaded (fonts included) came from elsewhere,
    and the server opened no connection off this machine (no analytics, no version check, no share link)."""
    url, _ = server
    browser.get(url)
    wait(browser, lambda d: css(d, "#query textarea"))[0].send_keys(QUERY)
    css(browser, "#search-text")[0].click()
    message_of(browser, "text-status")
    time.sleep(0.5)  # late requests (fonts, favicon) are in the log too
    events = [json.loads(entry["message"])["message"] for entry in browser.get_log("performance")]
    requested = {e["params"]["request"]["url"] for e in events if e["method"] == "Network.requestWillBeSent"}
    web_requests = {u for u in requested if u.startswith(("http:", "https:", "ws:", "wss:"))}
    assert web_requests and all(u.startswith(url.rstrip("/")) for u in web_requests), sorted(web_requests)
    assert any("/static/fonts/" in u for u in web_requests)  # the theme's fonts, served by the app
    errors = [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == []
    assert connections <= {"127.0.0.1", "localhost", "::1", None, "unix socket"}, connections


@pytest.mark.slow
def test_the_command_serves_the_app_over_a_saved_index(saved_tiny_model, tmp_path, offline_env):
    """`motionpatches app` as a user types it, in its own process, Gradio's environment variables unset."""
    from motionpatches.index import MotionIndex
    from motionpatches.loading import load_model_and_processor

    model, processor = load_model_and_processor(saved_tiny_model)
    MotionIndex.build(model, processor, demo_rows(generate_demo_motions(4, seed=7))).save(tmp_path / "index")
    port = free_port()
    command = [sys.executable, "-m", "motionpatches.cli", "app", "--model", str(saved_tiny_model)]
    command += ["--index", str(tmp_path / "index"), "--port", str(port), "--top_k", "3"]
    env = {k: v for k, v in offline_env.items() if not k.startswith("GRADIO_")}
    # Ctrl-C as from a terminal: a child inherits an ignored SIGINT, and Python then installs no handler for it
    server = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        config = json.loads(poll(f"http://127.0.0.1:{port}/config", server))
    finally:
        server.send_signal(signal.SIGINT)  # Ctrl-C, as a user stops it
        try:
            output = server.communicate(timeout=30)[0]
        except subprocess.TimeoutExpired:
            server.kill()  # a failed test leaves no server behind
            pytest.fail(f"the app did not stop on Ctrl-C within 30 s:\n{server.communicate()[0][-3000:]}")
    assert config["title"] == "motionpatches search"
    sliders = [c["props"] for c in config["components"] if c["props"].get("elem_id") == "text-k"]
    assert [(s["value"], s["maximum"]) for s in sliders] == [(3, 4)], output
    assert f"Running on local URL:  http://127.0.0.1:{port}" in output
    assert "public URL" not in output and server.returncode is not None


def poll(url: str, process, timeout: float = 120) -> str:
    """The body at `url` once the server in `process` answers; fails with its output if it exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the app exited with {process.returncode}:\n{process.communicate()[0][-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.read().decode()
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.25)
    pytest.fail(f"the app did not answer at {url} within {timeout} s")
