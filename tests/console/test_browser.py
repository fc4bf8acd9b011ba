"""The console in headless Chromium (Debian's ``chromium``, driven by Playwright) against a real
broker, worker and simulated fleet: review, approvals, the fleet, a task's trail, a replay
report, roles and CSRF, and no secret on any page. One stack, console and browser for the module.

Each test screenshots its page: into a temporary folder, or, with
``SWARM_CONSOLE_SCREENSHOTS=docs/console``, into the README's pictures (so a test run does not
rewrite tracked files unless asked to).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from playwright.async_api import Browser, BrowserContext, Page, async_playwright
from swarmstream.schemas.models import Feedback, ReviewDecision, TaskRequest, TaskResult
from swarmstream.streams.app.settings import Settings
from swarmstream.streams.cli.recorder import record_run
from swarmstream.streams.cli.runtime import Stack, running_stack, unique_settings
from swarmstream.streams.cli.stats_view import collect
from swarmstream.streams.console.app import Console, serving
from swarmstream.streams.console.settings import ConsoleSettings

from tests.agents.tools.service import ToolService, http_tool, write_tools_file
from tests.conftest import TEST_CHAINS, TEST_FLEET, read_topic, wait_for

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SHOTS = Path(os.environ.get("SWARM_CONSOLE_SCREENSHOTS") or tempfile.mkdtemp(prefix="console-shots-"))
VIEWPORT = {"width": 1100, "height": 680}

ADA = "ada-reviewer-token-7c1f0e2d9b"  # a reviewer
ADA_TOO = "ada-second-token-5e4d3c2b1a"  # the same person's second browser (another reviewer)
BOB = "bob-viewer-token-9a8b7c6d5e4f"  # a viewer
CANARY = "sk-test-" + "c4n4ry" * 6  # a caller's key in a prompt and a tool call's arguments

pytestmark = pytest.mark.timeout(240)


@dataclass
class Env:
    stack: Stack
    console: Console
    url: str
    browser: Browser
    service: ToolService
    recordings: Path


@pytest.fixture(scope="module")
async def env(broker_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Env]:
    tmp = tmp_path_factory.mktemp("console")
    chains = yaml.safe_load(TEST_CHAINS.read_text())
    chains["circuits"]["breaker"]["cooldown_ms"] = 600_000  # open for the whole module: the page must show it
    (tmp / "chains.yaml").write_text(yaml.safe_dump(chains))
    service = await ToolService().start()
    tools = write_tools_file(tmp / "tools.yaml", [http_tool(service, "notify", "dangerous"),
                                                  http_tool(service, "echo", "read")],
                             limits={"approval_timeout_ms": 60_000})
    settings = unique_settings(Settings(models=TEST_FLEET, chains=tmp / "chains.yaml", tools=tools),
                               review_threshold=0.9)
    recordings = tmp / "recordings"
    recordings.mkdir()
    console_settings = ConsoleSettings(port=0, recordings=recordings, users={  # type: ignore[arg-type]
        "ada": {"token": ADA, "role": "reviewer"}, "ada2": {"token": ADA_TOO, "role": "reviewer"},
        "bob": {"token": BOB, "role": "viewer"}})
    try:
        async with running_stack(settings, broker_url=broker_url, log_dir=tmp) as stack, \
                serving(stack.settings.model_copy(update={"broker": stack.broker_url}), console_settings) as (
                    console, url), async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                yield Env(stack, console, url, browser, service, recordings)
            finally:
                await browser.close()
    finally:
        await service.stop()


async def logged_in(env: Env, token: str) -> tuple[BrowserContext, Page]:
    context = await env.browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
    page = await context.new_page()
    await page.goto(f"{env.url}/login")
    await page.fill("input[name=token]", token)
    await page.click("button[type=submit]")
    await page.wait_for_url("**/review")
    return context, page


async def shoot(page: Page, name: str, *, full_page: bool = False) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=full_page)


async def reload_until(page: Page, url: str, selector: str, *, timeout_s: float = 20) -> None:
    """Open ``url`` until ``selector`` is on it (what the page shows comes from the topics, read async)."""
    deadline = time.monotonic() + timeout_s
    while True:
        await page.goto(url)
        if await page.locator(selector).count():
            return
        assert time.monotonic() < deadline, f"{url}: {selector} never appeared"
        await asyncio.sleep(0.2)


async def result_of(env: Env, task: TaskRequest) -> TaskResult:
    await env.stack.client.submit(task)
    return await env.stack.client.result(task.task_id, timeout_s=30)


def quality(view: dict, model: str, category: str) -> tuple[float, int]:
    stats = view["models"].get(f"{model}|{category}", {"quality_mean": 0.5, "quality_events": 0})
    return stats["quality_mean"], stats["quality_events"]


async def test_a_reviewer_picks_a_candidate_and_every_reviewer_sees_the_item_go(env: Env) -> None:
    task = TaskRequest(prompt="What is 12 + 30? Answer with a number.", answer_type="number",
                       models=["fast-a", "fast-b", "coin"], strategy="majority")
    result = await result_of(env, task)
    assert result.status == "low_consensus"
    before = quality(await collect(env.console.settings), "coin", "math")

    _, ada = await logged_in(env, ADA)
    _, other = await logged_in(env, ADA_TOO)
    article = f"#review-{task.task_id}"
    await reload_until(ada, f"{env.url}/review", article)
    await reload_until(other, f"{env.url}/review", article)
    await other.wait_for_function("document.body.dataset.live === '1'")  # its live updates are flowing
    assert await ada.locator(f"{article} .candidates .consensus .answer").inner_text() == "42 consensus"
    await ada.locator(article).scroll_into_view_if_needed()
    await shoot(ada, "review")

    await ada.click(f"{article} button.pick[data-model=coin]")
    await ada.wait_for_url("**/review")
    assert await ada.locator(article).count() == 0  # the page after a decision already lacks it
    await other.locator(article).wait_for(state="detached", timeout=10_000)  # gone for the other reviewer, live
    late = await other.evaluate("""async (taskId) => {  // a stale form sent after all: refused, not doubled
        const csrf = document.querySelector("meta[name=csrf-token]").content;
        const r = await fetch("/review/" + taskId, {method: "POST", body: new URLSearchParams({csrf, action: "accept"})});
        return r.url + " " + await r.text();
    }""", task.task_id)
    assert f"decided={task.task_id}" in late and "already decided by ada" in late

    topics = env.stack.settings.topics
    decisions = await read_topic(env.stack.broker_url, env.stack.settings.topics.review_decisions, count=2,
                                 timeout_s=2)  # one decision, not two: the late form wrote none
    [decision] = [d for d in decisions if isinstance(d, ReviewDecision) and d.task_id == task.task_id]
    coin_answer = {v.model_id: v.answer for v in result.votes}["coin"]
    assert (decision.action, decision.model_id, decision.answer, decision.correct_models, decision.reviewer,
            decision.consensus) == ("candidate", "coin", coin_answer, ["coin"], "ada", "42")
    feedback = [f for f in await read_topic(env.stack.broker_url, topics.feedback, count=1, timeout_s=10)
                if isinstance(f, Feedback) and f.task_id == task.task_id]
    assert [(f.score, f.source, f.created_ms) for f in feedback] == [(0.0, "review", result.created_ms)]

    async def learned() -> bool:
        return quality(await collect(env.console.settings), "coin", "math")[1] > before[1]

    await wait_for(learned, timeout_s=20, what="the feedback to reach the model book")
    after = quality(await collect(env.console.settings), "coin", "math")
    assert after[0] > before[0]  # the picked model's quality rose: its answer was the right one


async def test_a_dangerous_call_waits_for_a_person_who_approves_or_refuses_it(env: Env) -> None:
    _, ada = await logged_in(env, ADA)
    calls = env.service.calls

    approved = TaskRequest(prompt='tool: notify {"text": "deploy"}', answer_type="text", mode="single",
                           models=["tool-b"], tools=["notify"], timeout_ms=60_000)
    await env.stack.client.submit(approved)
    row = f"tr[data-key^='{approved.task_id}|notify|']"
    await reload_until(ada, f"{env.url}/approvals", row)
    assert calls["notify"] == 0
    assert await ada.locator(f"{row} td").nth(2).inner_text() == "tool-b"  # who proposed it
    await shoot(ada, "approvals")
    await ada.click(f"{row} button.approve")
    result = await env.stack.client.result(approved.task_id, timeout_s=30)
    assert result.answer == "deploy"  # (low_consensus: this module reviews below 0.9, single tasks too)
    assert calls["notify"] == 1

    refused = TaskRequest(prompt='tool: notify {"text": "wipe"}', answer_type="text", mode="single",
                          models=["tool-b"], tools=["notify"], timeout_ms=60_000)
    await env.stack.client.submit(refused)
    row = f"tr[data-key^='{refused.task_id}|notify|']"
    await reload_until(ada, f"{env.url}/approvals", row)
    await ada.fill(f"{row} input[name=reason]", "not today")
    await ada.click(f"{row} button.refuse")
    result = await env.stack.client.result(refused.task_id, timeout_s=30)
    assert result.answer is not None and "permission denied" in result.answer
    assert "approval refused by ada: not today" in result.answer
    assert calls["notify"] == 1  # never ran


async def test_a_viewer_cannot_decide_and_a_request_without_the_csrf_token_is_refused(env: Env) -> None:
    waiting = TaskRequest(prompt='tool: notify {"text": "later"}', answer_type="text", mode="single",
                          models=["tool-b"], tools=["notify"], timeout_ms=60_000)
    await env.stack.client.submit(waiting)
    row = f"tr[data-key^='{waiting.task_id}|notify|']"
    _, bob = await logged_in(env, BOB)
    await reload_until(bob, f"{env.url}/approvals", row)
    assert await bob.locator(f"{row} button.approve").count() == 0  # a viewer gets no buttons...
    key = await bob.locator(row).get_attribute("data-key")
    post = """async ([key, withToken]) => {
        const body = new URLSearchParams({key, action: "approve"});
        if (withToken) body.set("csrf", document.querySelector("meta[name=csrf-token]").content);
        const r = await fetch("/approvals", {method: "POST", body, redirect: "manual"});
        return [r.status, r.type === "opaqueredirect" ? "" : await r.text()];
    }"""
    status, text = await bob.evaluate(post, [key, True])  # ...and the server refuses the request itself
    assert (status, "is a viewer") == (403, text[text.find("is a viewer"):][:11])

    _, ada = await logged_in(env, ADA)
    await ada.goto(f"{env.url}/approvals")
    status, text = await ada.evaluate(post, [key, False])
    assert status == 403 and "CSRF" in text
    assert env.console.state.approvals.get(key) is not None  # still waiting: nothing was decided
    status, _ = await ada.evaluate(post.replace('action: "approve"', 'action: "refuse"'), [key, True])
    assert status == 0  # with the page's token: a redirect back to the page (opaque to fetch), decided
    result = await env.stack.client.result(waiting.task_id, timeout_s=30)
    assert result.answer is not None and "permission denied" in result.answer


async def test_the_fleet_page_shows_a_breaker_open_after_a_model_fails_repeatedly(env: Env) -> None:
    _, ada = await logged_in(env, ADA)
    for _ in range(3):  # the test chains open `breaker` after 3 consecutive failures
        result = await result_of(env, TaskRequest(prompt="What is 20 + 22? Answer with a number.",
                                                  answer_type="number", mode="chain", chain="breaker"))
        assert result.answered_by == "fast-a"
    await ada.goto(f"{env.url}/fleet")
    cell = ada.locator("tr[data-model=breaker] td.breaker")
    await wait_for(lambda: shows(cell, "open"), timeout_s=15, what="the breaker shown open")
    assert "server_error 3" in await ada.locator("tr[data-model=breaker]").inner_text()
    assert await ada.locator("tr[data-model=fast-a] td.breaker").inner_text() == "closed"
    await shoot(ada, "fleet")


async def shows(locator, text: str) -> bool:  # type: ignore[no-untyped-def]
    return bool(await locator.count()) and (await locator.inner_text()).strip() == text


async def test_the_trail_shows_a_chain_tasks_attempts_in_order(env: Env) -> None:
    task = TaskRequest(prompt="What is 20 + 22? Answer with a number.", answer_type="number", mode="chain",
                       chain="two")
    result = await result_of(env, task)
    assert [(a.model_id, a.failure_class) for a in result.attempts] == [("flaky", "server_error"), ("fast-a", None)]
    _, ada = await logged_in(env, ADA)
    await reload_until(ada, f"{env.url}/trail?task={task.task_id}", "li.TaskResult")
    summaries = await ada.locator("ol.trail .summary").all_inner_texts()
    expected = ["task: chain number", "request to flaky (attempt 0)", "failure of flaky (attempt 0): server_error",
                "request to fast-a (attempt 1)", "response from fast-a (attempt 1): '42'", "result: ok"]
    positions = [next(i for i, s in enumerate(summaries) if s.startswith(e)) for e in expected]
    assert positions == sorted(positions), summaries
    await ada.click("li.Failure summary")
    assert '"failure_class": "server_error"' in await ada.locator("li.Failure pre").inner_text()
    await shoot(ada, "trail")


async def test_the_replay_report_of_a_recording(env: Env) -> None:
    tasks = [TaskRequest(prompt=f"What is {i} + 1? Answer with a number.", answer_type="number",
                         models=["fast-a", "fast-b", "coin"]) for i in range(4)]
    tasks += [TaskRequest(prompt=f"What is {i} + 1? Answer with a number.", answer_type="number", mode="select",
                          models=["fast-a", "fast-b", "coin"]) for i in range(4, 10)]  # logged selections
    for task in tasks:
        await result_of(env, task)
    await record_run(env.stack.broker_url, env.stack.settings.topics, env.recordings / "run.jsonl",
                     labels={t.task_id: str(i + 1) for i, t in enumerate(tasks)}, idle_s=0.5)
    _, ada = await logged_in(env, ADA)
    await ada.goto(f"{env.url}/replay")
    await ada.select_option("select[name=file]", "run.jsonl")
    await ada.click("form.search button")
    await ada.wait_for_selector("img.diagram")
    strategies = await ada.locator("table.strategies tbody tr td:first-child").all_inner_texts()
    assert "majority" in strategies
    assert await ada.locator("img.diagram").evaluate("img => img.naturalWidth") > 100  # the PNG decoded
    policies = await ada.locator("table.counterfactual tbody tr td:first-child").all_inner_texts()
    assert "always:coin" in policies  # counterfactual estimates from the logged selections
    await shoot(ada, "replay", full_page=True)
    await ada.goto(f"{env.url}/replay?file=../../etc/passwd")
    assert "no recording named" in await ada.locator("p.error").inner_text()


async def test_no_page_shows_a_secret(env: Env) -> None:
    """The canary idea of tests/e2e/test_secrets.py, for every page: a key a caller put in a prompt
    and a tool call (raw on the tool-calls topic, which the trail reads) and the console's own tokens."""
    leaky = TaskRequest(prompt='tool: echo {"api_key": "' + CANARY + '", "text": "hi ' + CANARY + '"}',
                        answer_type="text", mode="single", models=["tool-a"], tools=["echo"])
    flagged = TaskRequest(prompt=f"My key is {CANARY}. What is 2 + 2? Answer with a number.", answer_type="number",
                          models=["fast-a", "fast-b", "coin"])
    await result_of(env, leaky)
    await result_of(env, flagged)
    _, ada = await logged_in(env, ADA)
    await reload_until(ada, f"{env.url}/trail?task={leaky.task_id}", "li.ToolResult")
    await reload_until(ada, f"{env.url}/review", f"#review-{flagged.task_id}")
    pages = ["/review", "/approvals", "/fleet", f"/trail?task={leaky.task_id}", f"/trail?task={flagged.task_id}",
             "/replay", "/replay?file=run.jsonl", "/login"]
    seen = []
    for path in pages:
        await ada.goto(env.url + path)
        for details in await ada.locator("details").all():
            await details.evaluate("d => d.open = true")
        seen.append(await ada.content())
    assert "ToolCall" in seen[3] and "[REDACTED]" in seen[3]  # the raw call was there to leak, and did not
    everything = "\n".join(seen)
    for secret in (CANARY, ADA, ADA_TOO, BOB):
        assert secret not in everything
