"""`unisr serve`: the HTTP API on a tiny trained run, request batching, bad input, the start-up imports and the browser page.

The page test drives headless Chromium through selenium and chromedriver; it skips, naming what is missing, without them.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

fastapi = pytest.importorskip("fastapi", reason="the serve extra is not installed (pip install 'unisr[serve]')")
httpx = pytest.importorskip("httpx", reason="the serve extra is not installed (pip install 'unisr[serve]')")

from fastapi.testclient import TestClient  # noqa: E402

from unisr import api  # noqa: E402
from unisr.decoder.retriever import GenerativeRetriever  # noqa: E402
from unisr.errors import UnisrError  # noqa: E402
from unisr.serve.app import PLOT_URL, create_app  # noqa: E402
from unisr.serve.batcher import Job, RequestBatcher  # noqa: E402
from unisr.serve.errors import MAX_BODY_BYTES  # noqa: E402
from unisr.serve.models import MAX_HISTORY_ITEMS, MAX_K, MAX_QUERY_CHARS  # noqa: E402

K = 5
CONCURRENT = 12  # requests fired at once in the batching tests
BROWSER_WAIT_S = 30
SERVER_START_S = 20
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
TRAINING_MODULES = ("unisr.api", "unisr.training", "unisr.decoder.train", "unisr.decoder.module", "unisr.decoder.calibration")
TRAINING_MODULES += ("unisr.tokenizer.train", "unisr.tokenizer.module")
PNG_HEADER = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def run_dir(embedded_synthetic, tmp_path_factory) -> Path:
    """Joint codes and a two-epoch joint decoder on the synthetic task, guided by the content prior (no weight sweep)."""
    root = tmp_path_factory.mktemp("serve")
    codes = api.train_codes(
        embedded_synthetic.root, api.tokenizer_config("tokenizer-small", scheme="joint", epochs=20, progress=False), root / "codes"
    )
    guided = {"guidance_grid": (), "guidance_rec": 1.0, "guidance_search": 1.0}
    config = api.decoder_config("decoder-small", epochs=2, val_max_requests=50, progress=False, **guided)
    return api.train(embedded_synthetic.root, codes.directory, config, root / "run").directory


@pytest.fixture(scope="module")
def retriever(run_dir) -> GenerativeRetriever:
    return GenerativeRetriever.load(run_dir)


@pytest.fixture(scope="module")
def compare_dir(tmp_path_factory) -> Path:
    """A comparison directory shaped like `unisr compare`'s: one cell, one baseline, a plot."""
    directory = tmp_path_factory.mktemp("comparison")
    metrics = {"recall@10": {"mean": 0.5, "std": 0.0, "n": 1}, "ndcg@10": {"mean": 0.25, "std": 0.0, "n": 1}}
    results = {
        "dataset": {"name": "synthetic", "fingerprint": "f"},
        "metric": "ndcg@10",
        "split": "test",
        "aggregate": [{"scheme": "joint", "quantizer": "rqvae", "decoder": "joint", "seeds": [0], "tasks": {"rec": {"metrics": metrics}}}],
        "baselines": {"bm25": {"name": "bm25", "results": {"search": {"metrics": {"recall@10": 0.9, "ndcg@10": 0.8}}}}},
    }
    (directory / "results.json").write_text(json.dumps(results))
    (directory / "tradeoff.png").write_bytes(PNG_HEADER + b"not really a picture")
    return directory


@pytest.fixture(scope="module")
def client(retriever, compare_dir):
    with TestClient(create_app(retriever, compare_dir)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def plain_client(retriever):
    with TestClient(create_app(retriever)) as test_client:
        yield test_client


def item_ids(results: list) -> list[str]:
    return [entry["item_id"] if isinstance(entry, dict) else entry.item_id for entry in results]


def test_health_describes_the_run(client, retriever):
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["run"] == str(retriever.run_dir)
    assert health["dataset"] == {"name": "synthetic", "fingerprint": retriever.dataset.fingerprint}
    assert health["items"] == len(retriever.item_ids) and health["users"] == len(retriever.dataset.splits)
    assert health["tasks"] == ["rec", "search"] and health["uptime_s"] >= 0
    assert health["batching"] is True and health["compare"] is True and health["max_k"] == min(MAX_K, len(retriever.item_ids))


def test_search_and_recommend_answer_as_the_retriever_does(client, retriever):
    query = retriever.dataset.queries_in("test")[0]
    user = retriever.dataset.splits[1].user_id
    history = list(retriever.user_history(user)[:3])
    answer = client.post("/search", json={"query": query.text, "k": K}).json()
    assert item_ids(answer["results"]) == item_ids(retriever.search(query.text, k=K))
    first = answer["results"][0]
    assert first["rank"] == 1 and first["title"] == retriever.dataset.catalog[first["item_id"]].title
    assert tuple(first["semantic_id"]) == retriever.tokenizer.table.semantic_id(first["item_id"])
    assert answer["batch_size"] >= 1 and answer["took_ms"] > 0
    personal = client.post("/search", json={"query": query.text, "k": K, "user": user}).json()
    assert item_ids(personal["results"]) == item_ids(retriever.search(query.text, k=K, user=user))
    by_history = client.post("/search", json={"query": query.text, "k": 3, "history": history}).json()
    assert item_ids(by_history["results"]) == item_ids(retriever.search_batch([query.text], 3, histories=[history])[0])
    recommended = client.post("/recommend", json={"user": user, "k": K}).json()
    assert item_ids(recommended["results"]) == item_ids(retriever.recommend(user=user, k=K))
    after = client.post("/recommend", json={"history": history, "k": 2, "exclude_history": False}).json()
    assert item_ids(after["results"]) == item_ids(retriever.recommend(history=history, k=2, exclude_history=False))


def mixed_jobs(retriever: GenerativeRetriever) -> list[Job]:
    """Searches and recommendations with different k, users and histories."""
    dataset = retriever.dataset
    jobs = []
    for index, query in enumerate(dataset.queries_in("test")[: CONCURRENT // 2]):
        history = tuple(retriever.user_history(query.user_id)) if query.user_id else ()
        jobs.append(Job("search", 2 + index % 4, history, query.user_id, query.text))
    for index, split in enumerate(dataset.splits[: CONCURRENT // 2]):
        jobs.append(Job("rec", 1 + index % 5, tuple(retriever.user_history(split.user_id)), split.user_id))
    return jobs


def test_batched_answers_equal_answers_decoded_alone(retriever):
    """Concurrent requests are decoded together; each keeps its own k, user and history."""
    jobs = mixed_jobs(retriever)

    async def submit_all(max_batch: int):
        batcher = RequestBatcher(retriever, max_batch=max_batch, max_wait_ms=20.0)
        try:
            return await asyncio.gather(*(batcher.submit(job) for job in jobs)), batcher.stats
        finally:
            await batcher.close()

    batched, stats = asyncio.run(submit_all(CONCURRENT))
    alone, alone_stats = asyncio.run(submit_all(1))
    assert stats.largest > 1 and stats.batches < len(jobs) and stats.requests == len(jobs)
    assert alone_stats.largest == 1 and alone_stats.batches == len(jobs)
    for job, together, single in zip(jobs, batched, alone, strict=True):
        assert len(together.results) == job.k
        assert item_ids(together.results) == item_ids(single.results), job
        assert [entry.score for entry in together.results] == pytest.approx([entry.score for entry in single.results], abs=1e-3)


def fire(app, requests: list[tuple[str, dict]]) -> list[dict]:
    """Send the requests at once to the app in-process (an async client over ASGI) and return the answers."""

    async def send_all():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://unisr") as session:
            try:
                answers = await asyncio.gather(*(session.post(path, json=body) for path, body in requests))
            finally:
                await app.state.batcher.close()
        return [answer.json() for answer in answers]

    return asyncio.run(send_all())


def concurrent_requests(retriever: GenerativeRetriever) -> list[tuple[str, dict]]:
    requests = []
    for job in mixed_jobs(retriever):
        if job.task == "search":
            requests.append(("/search", {"query": job.query, "k": job.k, "user": job.user}))
        else:
            requests.append(("/recommend", {"user": job.user, "k": job.k}))
    return requests


def test_concurrent_http_requests_share_a_batch_unless_batching_is_off(retriever):
    requests = concurrent_requests(retriever)
    batched = fire(create_app(retriever, max_wait_ms=50.0), requests)
    unbatched = fire(create_app(retriever, batching=False), requests)
    assert max(answer["batch_size"] for answer in batched) > 1
    assert {answer["batch_size"] for answer in unbatched} == {1}
    for (_, body), together, alone in zip(requests, batched, unbatched, strict=True):
        assert len(together["results"]) == body["k"] and item_ids(together["results"]) == item_ids(alone["results"])


def test_item_view_shows_fields_and_prefix_neighbours(client, retriever):
    item_id = retriever.item_ids[0]
    view = client.get(f"/items/{item_id}", params={"limit": 5}).json()
    semantic_id = list(retriever.tokenizer.table.semantic_id(item_id))
    assert view["item_id"] == item_id and view["semantic_id"] == semantic_id
    assert view["title"] == retriever.dataset.catalog[item_id].title and view["text"] and view["fields"]
    neighbours = view["neighbours"]
    assert 0 < len(neighbours) <= 5 and item_id not in item_ids(neighbours)
    shared = [neighbour["shared_levels"] for neighbour in neighbours]
    assert shared == sorted(shared, reverse=True) and min(shared) >= 1
    for neighbour in neighbours:
        assert neighbour["semantic_id"][: neighbour["shared_levels"]] == semantic_id[: neighbour["shared_levels"]]


def test_user_view_lists_the_history_with_titles(client, retriever):
    split = retriever.dataset.splits[0]
    view = client.get(f"/users/{split.user_id}").json()
    assert item_ids(view["history"]) == retriever.user_history(split.user_id)
    assert [entry["split"] for entry in view["history"]][-2:] == ["valid", "test"]
    assert all(entry["title"] == retriever.dataset.catalog[entry["item_id"]].title for entry in view["history"])


def test_examples_offer_test_queries_and_users(client, retriever):
    examples = client.get("/examples").json()
    assert examples["queries"] and examples["users"][0] == retriever.dataset.splits[0].user_id
    assert {query["text"] for query in examples["queries"]} <= {query.text for query in retriever.dataset.queries_in("test")}


def test_compare_serves_the_table_results_and_plot(client, plain_client, tmp_path, retriever):
    comparison = client.get("/compare").json()
    assert comparison["metric"] == "ndcg@10" and comparison["plot"] == PLOT_URL
    assert [row["codes"] for row in comparison["rows"]] == ["joint (rqvae)", "baseline: bm25"]
    assert comparison["rows"][0]["metrics"]["rec ndcg@10"] == 0.25 and comparison["rows"][1]["metrics"]["search ndcg@10"] == 0.8
    assert comparison["results"]["split"] == "test"
    plot = client.get(PLOT_URL)
    assert plot.status_code == 200 and plot.headers["content-type"] == "image/png" and plot.content.startswith(PNG_HEADER)
    for path in ("/compare", PLOT_URL):
        missing = plain_client.get(path)
        assert missing.status_code == 404 and "--compare" in missing.json()["error"]
    with pytest.raises(UnisrError, match="results.json"):
        create_app(retriever, tmp_path)


def test_the_page_and_its_assets_are_served_from_the_app(client):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    for element_id in ("query", "search-results", "search-error", "user-id", "user-recs", "item-panel", "compare-table"):
        assert f'id="{element_id}"' in page.text
    for asset in ("/static/app.js", "/static/style.css"):
        answer = client.get(asset)
        assert answer.status_code == 200
        assert "http://" not in answer.text and "https://" not in answer.text, f"{asset} loads something from the internet"
    assert "https://" not in page.text and "http://" not in page.text
    assert client.get("/openapi.json").json()["paths"].keys() >= {"/search", "/recommend", "/health", "/items/{item_id}"}


def bad_requests(retriever: GenerativeRetriever) -> list[tuple[str, str, dict, int, str | None]]:
    """(method, path, request keyword arguments, expected status, expected field)."""
    user = retriever.dataset.splits[0].user_id
    item = retriever.item_ids[0]
    raw = {"headers": {"content-type": "application/json"}}
    return [
        ("post", "/search", {"json": {"query": ""}}, 422, "query"),
        ("post", "/search", {"json": {"query": "   "}}, 422, "query"),
        ("post", "/search", {"json": {"query": "lamp", "k": 0}}, 422, "k"),
        ("post", "/search", {"json": {"query": "lamp", "k": -3}}, 422, "k"),
        ("post", "/search", {"json": {"query": "lamp", "k": len(retriever.item_ids) + 1}}, 422, "k"),
        ("post", "/search", {"json": {"query": "lamp", "k": "ten"}}, 422, "k"),
        ("post", "/search", {"json": {"query": "lamp", "user": "nobody"}}, 422, "user"),
        ("post", "/search", {"json": {"query": "lamp", "history": [item, "no-such-item"]}}, 422, "history"),
        ("post", "/search", {"json": {"query": "lamp", "history": [item] * (MAX_HISTORY_ITEMS + 1)}}, 422, "history"),
        ("post", "/search", {"json": {"query": "lamp " * MAX_QUERY_CHARS}}, 422, "query"),
        ("post", "/search", {"json": {"k": 3}}, 422, "query"),
        ("post", "/search", {"json": {"query": "lamp", "colour": "red"}}, 422, "colour"),
        ("post", "/search", {"json": ["lamp"]}, 422, "body"),
        ("post", "/search", {"content": b'{"query": "lamp", ', **raw}, 422, "body"),
        ("post", "/search", {}, 422, "body"),
        ("post", "/search", {"content": b'{"query": "' + b"a" * MAX_BODY_BYTES + b'"}', **raw}, 413, "body"),
        ("post", "/recommend", {"json": {}}, 422, "user"),
        ("post", "/recommend", {"json": {"user": user, "history": [item]}}, 422, "history"),
        ("post", "/recommend", {"json": {"history": []}}, 422, "history"),
        ("post", "/recommend", {"json": {"user": "nobody"}}, 422, "user"),
        ("post", "/recommend", {"json": {"history": ["no-such-item"]}}, 422, "history"),
        ("post", "/recommend", {"json": {"user": user, "k": MAX_K + len(retriever.item_ids)}}, 422, "k"),
        ("post", "/recommend", {"json": {"user": user, "exclude_history": "perhaps"}}, 422, "exclude_history"),
        ("get", "/items/no-such-item", {}, 404, "item_id"),
        ("get", f"/items/{item}", {"params": {"limit": -1}}, 422, "limit"),
        ("get", "/users/nobody", {}, 404, "user_id"),
        ("get", "/no-such-page", {}, 404, None),
        ("get", "/search", {}, 405, None),
    ]


def test_bad_input_gets_a_one_line_4xx_naming_the_field(client, retriever):
    for method, path, arguments, status, field in bad_requests(retriever):
        answer = client.request(method.upper(), path, **arguments)
        case = f"{method.upper()} {path} {str(arguments)[:120]}"
        assert answer.status_code == status, f"{case}: {answer.status_code} {answer.text[:300]}"
        body = answer.json()
        assert set(body) == {"error", "field"} and body["field"] == field, f"{case}: {body}"
        assert body["error"] and "\n" not in body["error"] and "Traceback" not in body["error"], f"{case}: {body}"


def test_creating_the_app_imports_no_training_code(run_dir):
    """In a fresh interpreter: loading the run and building the app imports neither Lightning nor unisr's training modules."""
    code = (
        "import sys\n"
        "from fastapi.testclient import TestClient\n"
        "from unisr.decoder.retriever import GenerativeRetriever\n"
        "from unisr.serve.app import create_app\n"
        f"app = create_app(GenerativeRetriever.load({str(run_dir)!r}))\n"
        "assert TestClient(app).get('/health').json()['status'] == 'ok'\n"
        "print('\\n'.join(sorted(sys.modules)))\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300, check=False)
    assert completed.returncode == 0, completed.stderr[-3000:]
    modules = set(completed.stdout.split())
    assert "unisr.serve.app" in modules
    lightning = sorted(name for name in modules if name.split(".")[0] in ("lightning", "pytorch_lightning", "lightning_fabric"))
    assert not lightning, f"serving imported Lightning: {lightning[:5]}"
    assert not modules & set(TRAINING_MODULES), sorted(modules & set(TRAINING_MODULES))


def test_cli_serve_binds_loopback_by_default(capsys):
    from unisr.cli.main import main

    assert main(["serve", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "127.0.0.1" in text and "--no-batching" in text and "--compare" in text


# ----- the page in a real browser


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def live_server(retriever, compare_dir):
    """The app under uvicorn on a free loopback port, in a background thread."""
    uvicorn = pytest.importorskip("uvicorn", reason="the serve extra is not installed (pip install 'unisr[serve]')")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(retriever, compare_dir), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + SERVER_START_S
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail(f"uvicorn did not start on 127.0.0.1:{port} within {SERVER_START_S} s")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(SERVER_START_S)


@pytest.fixture(scope="module")
def browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install selenium)")
    binary = next((path for path in map(shutil.which, CHROMIUM_NAMES) if path), None)
    if binary is None:
        pytest.skip(f"no Chromium found (looked for {', '.join(CHROMIUM_NAMES)}; on Debian: apt-get install chromium chromium-driver)")
    driver_path = shutil.which("chromedriver")
    if driver_path is None:
        pytest.skip("no chromedriver found on PATH (on Debian: apt-get install chromium-driver)")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1400,1000"):
        options.add_argument(argument)
    try:
        driver = webdriver.Chrome(service=Service(driver_path), options=options)
    except Exception as error:  # a driver that does not match the browser, a browser that cannot start here
        pytest.skip(f"headless Chromium did not start ({type(error).__name__}: {' '.join(str(error).split())[:200]})")
    yield driver
    driver.quit()


def test_page_searches_recommends_and_shows_errors_in_a_browser(browser, live_server, retriever, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    def rows(selector: str):
        return browser.find_elements(By.CSS_SELECTOR, f"{selector} li.result")

    wait = WebDriverWait(browser, BROWSER_WAIT_S)
    browser.get(live_server + "/")
    wait.until(lambda _: retriever.dataset.fingerprint in browser.find_element(By.ID, "health-line").text)

    query = retriever.dataset.queries_in("test")[0].text
    browser.find_element(By.ID, "query").send_keys(query, Keys.ENTER)  # Enter submits
    wait.until(lambda _: rows("#search-results"))
    expected = item_ids(retriever.search(query, k=10))
    assert [row.get_attribute("data-item") for row in rows("#search-results")] == expected
    assert retriever.dataset.catalog[expected[0]].title in rows("#search-results")[0].text
    assert rows("#search-results")[0].find_elements(By.CSS_SELECTOR, ".sid .code")  # semantic-ID chips

    user = retriever.dataset.splits[0].user_id
    browser.find_element(By.ID, "user-id").send_keys(user, Keys.ENTER)
    wait.until(lambda _: rows("#user-recs") and rows("#user-history"))
    assert [row.get_attribute("data-item") for row in rows("#user-history")] == retriever.user_history(user)
    assert [row.get_attribute("data-item") for row in rows("#user-recs")] == item_ids(retriever.recommend(user=user, k=10))

    rows("#search-results")[0].find_element(By.CSS_SELECTOR, "a.title").click()  # the item view with its prefix neighbours
    wait.until(lambda _: browser.find_element(By.ID, "item-id").text == expected[0])
    wait.until(lambda _: rows("#item-neighbours"))

    wait.until(lambda _: browser.find_element(By.ID, "compare-table").find_elements(By.CSS_SELECTOR, "tbody tr"))
    browser.save_screenshot(str(tmp_path / "serve.png"))

    box = browser.find_element(By.ID, "query")
    box.clear()
    browser.find_element(By.ID, "search-submit").click()  # an empty query: the server's error, inline
    error = browser.find_element(By.ID, "search-error")
    wait.until(lambda _: error.is_displayed() and "query" in error.text)
    assert rows("#search-results")  # the previous results stay

    browser.find_element(By.ID, "user-id").clear()
    browser.find_element(By.ID, "user-id").send_keys("nobody", Keys.ENTER)
    wait.until(lambda _: browser.find_element(By.ID, "user-error").is_displayed())
    assert "nobody" in browser.find_element(By.ID, "user-error").text
