"""The simulated fleet over real HTTP on loopback, in both protocols."""

import asyncio
import statistics
import time

import aiohttp
import orjson
import pytest
from swarmstream.agents.models.simulated import (
    SimFleet,
    SimProfile,
    demo_tasks,
    extract_answer,
    serve_forever,
    solve,
)

from tests.conftest import wait_for

FAST = {"latency_median_ms": 0, "latency_p99_ms": 0}
OPENAI_PATH = "/chat/completions"
ANTHROPIC_PATH = "/messages"


def openai_request(model, prompt, **extra):
    return {"model": model, "messages": [{"role": "user", "content": prompt}], **extra}


def anthropic_request(model, prompt, **extra):
    return {"model": model, "max_tokens": 64, "messages": [{"role": "user", "content": prompt}], **extra}


def request_for(protocol, model, prompt, **extra):
    if protocol == "openai":
        return OPENAI_PATH, openai_request(model, prompt, **extra)
    return ANTHROPIC_PATH, anthropic_request(model, prompt, **extra)


def content_of(protocol, body):
    if protocol == "openai":
        return body["choices"][0]["message"]["content"]
    return "".join(block["text"] for block in body["content"] if block["type"] == "text")


class Client:
    """A thin aiohttp client: (status, headers, parsed body) per call."""

    def __init__(self, base_url: str, session: aiohttp.ClientSession) -> None:
        self.base_url = base_url
        self.session = session

    async def post(self, path, payload, **kwargs):
        async with self.session.post(self.base_url + path, data=orjson.dumps(payload), **kwargs) as resp:
            return resp.status, resp.headers, orjson.loads(await resp.read())

    async def call(self, protocol, model, prompt, **extra):
        path, payload = request_for(protocol, model, prompt, **extra)
        return await self.post(path, payload)


@pytest.fixture
async def session():
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100)) as s:
        yield s


async def started(session, profiles, **kwargs):
    fleet = SimFleet(profiles, **kwargs)
    return fleet, Client(await fleet.start(), session)


@pytest.fixture
async def fleet(session):
    fleet, client = await started(
        session,
        {
            "gpt-sim": SimProfile(accuracy=0.7, **FAST),
            "claude-sim": SimProfile(accuracy=0.7, protocol="anthropic", **FAST),
        },
        seed=11,
    )
    yield fleet, client
    await fleet.stop()


MODEL_OF = {"openai": "gpt-sim", "anthropic": "claude-sim"}
PROTOCOLS = ("openai", "anthropic")


# --- body shapes ----------------------------------------------------------------------------


async def test_openai_body_shape(fleet):
    fleet, client = fleet
    assert client.base_url.startswith("http://127.0.0.1:") and client.base_url.endswith("/v1")
    status, headers, body = await client.call("openai", "gpt-sim", "What is 17 + 25? Answer with a number.")
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    assert body["id"].startswith("chatcmpl-") and body["object"] == "chat.completion"
    assert body["model"] == "gpt-sim" and isinstance(body["created"], int)
    (choice,) = body["choices"]
    assert choice["index"] == 0 and choice["finish_reason"] == "stop" and choice["logprobs"] is None
    assert choice["message"]["role"] == "assistant"
    assert extract_answer(choice["message"]["content"], "number") in {
        "42",
        *solve("What is 17 + 25? Answer with a number.").wrong,
    }
    usage = body["usage"]
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


async def test_anthropic_body_shape(fleet):
    fleet, client = fleet
    status, headers, body = await client.call("anthropic", "claude-sim", demo_tasks(1)[0].prompt)
    assert status == 200 and "request-id" in headers
    assert body["id"].startswith("msg_") and body["type"] == "message" and body["role"] == "assistant"
    assert body["model"] == "claude-sim" and body["stop_reason"] == "end_turn" and body["stop_sequence"] is None
    (block,) = body["content"]
    assert block["type"] == "text" and extract_answer(block["text"], "label") in demo_tasks(1)[0].labels
    assert body["usage"]["input_tokens"] > 0 and body["usage"]["output_tokens"] > 0


async def test_usage_counts_the_system_prompt_and_the_answer(fleet):
    fleet, client = fleet
    prompt = "What is 2 + 2? Answer with a number."
    _, _, short = await client.call("openai", "gpt-sim", prompt)
    long_system = {"role": "system", "content": "Be careful. " * 100}
    _, _, long = await client.post(
        OPENAI_PATH, {"model": "gpt-sim", "messages": [long_system, {"role": "user", "content": prompt}]}
    )
    assert long["usage"]["prompt_tokens"] - short["usage"]["prompt_tokens"] == pytest.approx(1200 / 4, abs=8)
    _, _, a_short = await client.call("anthropic", "claude-sim", prompt)
    _, _, a_long = await client.post(
        ANTHROPIC_PATH, anthropic_request("claude-sim", prompt, system="Be careful. " * 100)
    )
    assert a_long["usage"]["input_tokens"] - a_short["usage"]["input_tokens"] == pytest.approx(1200 / 4, abs=8)
    # the same answer, the same output tokens
    assert long["usage"]["completion_tokens"] == short["usage"]["completion_tokens"]


async def test_openai_logprobs(fleet):
    fleet, client = fleet
    task = demo_tasks(2)[1]
    _, _, body = await client.call("openai", "gpt-sim", task.prompt, logprobs=True, top_logprobs=3)
    logprobs = body["choices"][0]["logprobs"]["content"]
    content = body["choices"][0]["message"]["content"]
    assert "".join(t["token"] for t in logprobs) == content
    for t in logprobs:
        assert t["logprob"] <= 0 and t["bytes"] == list(t["token"].encode()) and 1 <= len(t["top_logprobs"]) <= 3
    # the first answer token carries the model's confidence and names alternatives
    answer_token = next(t for t in logprobs if t["logprob"] < -0.001)
    assert len(answer_token["top_logprobs"]) == 3


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_unknown_model_is_404_with_a_protocol_error(fleet, protocol):
    fleet, client = fleet
    status, _, body = await client.call(protocol, "gpt-5o", "What is 1 + 1? Answer with a number.")
    assert status == 404
    if protocol == "openai":
        assert body["error"]["code"] == "model_not_found" and "gpt-5o" in body["error"]["message"]
    else:
        assert body["type"] == "error" and body["error"]["type"] == "not_found_error"
    assert "gpt-sim" in str(body)  # the message lists the simulated models


async def test_a_model_asked_over_the_other_protocol_is_404_with_a_hint(fleet):
    fleet, client = fleet
    status, _, body = await client.call("anthropic", "gpt-sim", "What is 1 + 1? Answer with a number.")
    assert status == 404 and "/v1/chat/completions" in body["error"]["message"]


@pytest.mark.parametrize(
    ("protocol", "payload", "message"),
    [
        ("openai", {"model": "gpt-sim"}, "messages"),
        ("openai", {"model": "gpt-sim", "messages": [{"role": "user", "content": "x"}], "stream": True}, "stream"),
        ("anthropic", {"model": "claude-sim", "messages": [{"role": "user", "content": "x"}]}, "max_tokens"),
        ("anthropic", [1, 2], "JSON object"),
    ],
)
async def test_malformed_requests_are_400(fleet, protocol, payload, message):
    fleet, client = fleet
    status, _, body = await client.post(OPENAI_PATH if protocol == "openai" else ANTHROPIC_PATH, payload)
    assert status == 400 and message in body["error"]["message"]
    assert fleet.counters[MODEL_OF[protocol]]["calls"] == 0


async def test_content_as_parts_and_a_preamble_are_understood(fleet):
    fleet, client = fleet
    fleet.set_profile("claude-sim", SimProfile(accuracy=1.0, protocol="anthropic", **FAST))
    payload = anthropic_request("claude-sim", "")
    payload["messages"] = [
        {"role": "user", "content": "What is 1 + 1? Answer with a number."},
        {"role": "assistant", "content": "Answer: 2"},
        {"role": "user", "content": [{"type": "text", "text": "Next one.\nWhat is 30 * 3? Answer with a number."}]},
    ]
    _, _, body = await client.post(ANTHROPIC_PATH, payload)
    assert content_of("anthropic", body) == "Answer: 90"


async def test_an_unsolvable_prompt_gets_a_well_formed_answer(fleet):
    fleet, client = fleet
    status, _, body = await client.call("openai", "gpt-sim", "Write a haiku about Kafka.")
    assert status == 200 and content_of("openai", body)
    assert fleet.counters["gpt-sim"]["unsolved"] == 1


async def test_model_list_and_stats_and_reset(fleet):
    fleet, client = fleet
    async with client.session.get(client.base_url + "/models") as resp:
        assert {m["id"] for m in (await resp.json())["data"]} == {"gpt-sim", "claude-sim"}
    for _ in range(3):
        await client.call("openai", "gpt-sim", "What is 5 + 5? Answer with a number.")
    root = client.base_url.removesuffix("/v1")
    async with client.session.get(root + "/_sim/stats") as resp:
        stats = await resp.json()
    assert stats == fleet.counters
    assert stats["gpt-sim"]["calls"] == 3 and stats["gpt-sim"]["correct"] + stats["gpt-sim"]["wrong"] == 3
    assert stats["claude-sim"]["calls"] == 0
    async with client.session.post(root + "/_sim/reset") as resp:
        assert resp.status == 200
    assert fleet.counters["gpt-sim"]["calls"] == 0


# --- answers: accuracy and determinism ------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_measured_accuracy_matches_the_profile(fleet, protocol):
    fleet, client = fleet
    model = MODEL_OF[protocol]
    tasks = demo_tasks(500, seed=5, kinds=("label", "number", "text", "json"))
    replies = await asyncio.gather(*(client.call(protocol, model, t.prompt) for t in tasks))
    correct = [
        extract_answer(content_of(protocol, body), t.answer_type) == t.answer
        for t, (_, _, body) in zip(tasks, replies, strict=True)
    ]
    # binomial sd at n=500, p=0.7 is 0.02; the draw is deterministic, so this cannot flake
    assert abs(sum(correct) / len(tasks) - 0.7) < 0.06
    assert fleet.counters[model]["correct"] == sum(correct)
    # every wrong answer is one of the plausible wrong ones
    for task, ok, (_, _, body) in zip(tasks, correct, replies, strict=True):
        if not ok:
            assert extract_answer(content_of(protocol, body), task.answer_type) in solve(task.prompt).wrong


async def test_the_same_prompt_gets_the_same_answer(fleet, session):
    fleet, client = fleet
    tasks = demo_tasks(30, kinds=("label", "number", "text", "json"))
    first = [content_of("openai", (await client.call("openai", "gpt-sim", t.prompt))[2]) for t in tasks]
    again = [content_of("openai", (await client.call("openai", "gpt-sim", t.prompt))[2]) for t in reversed(tasks)]
    assert first == again[::-1]
    # another fleet with the same seed gives the same answers; another seed does not
    for seed, same in ((11, True), (12, False)):
        other, other_client = await started(session, {"gpt-sim": SimProfile(accuracy=0.7, **FAST)}, seed=seed)
        try:
            answers = [content_of("openai", (await other_client.call("openai", "gpt-sim", t.prompt))[2]) for t in tasks]
        finally:
            await other.stop()
        assert (answers == first) is same


async def test_set_profile_changes_accuracy_at_runtime(fleet):
    fleet, client = fleet
    tasks = demo_tasks(40)

    async def n_correct():
        replies = [await client.call("openai", "gpt-sim", t.prompt) for t in tasks]
        return sum(
            extract_answer(content_of("openai", b), t.answer_type) == t.answer
            for t, (_, _, b) in zip(tasks, replies, strict=True)
        )

    fleet.set_profile("gpt-sim", SimProfile(accuracy=0.0, **FAST))
    assert await n_correct() == 0
    fleet.set_profile("gpt-sim", SimProfile(accuracy=1.0, **FAST))
    assert await n_correct() == len(tasks)
    with pytest.raises(ValueError, match="gpt-sim"):
        fleet.set_profile("gpt-sim", SimProfile.model_construct(**{**SimProfile().model_dump(), "accuracy": 2.0}))


async def test_two_models_make_independent_mistakes_and_errors(session):
    profiles = {name: SimProfile(accuracy=0.5, failures={"server_error": 0.3}, **FAST) for name in ("sim-a", "sim-b")}
    fleet, client = await started(session, profiles, seed=3)
    try:
        tasks = demo_tasks(500, seed=9)
        outcomes = {}
        for model in profiles:
            replies = await asyncio.gather(*(client.call("openai", model, t.prompt) for t in tasks))
            outcomes[model] = [
                (s != 200, s == 200 and extract_answer(content_of("openai", b), t.answer_type) == t.answer)
                for t, (s, _, b) in zip(tasks, replies, strict=True)
            ]
    finally:
        await fleet.stop()
    failed_a, failed_b = ([o[0] for o in outcomes[m]] for m in profiles)
    assert abs(sum(failed_a) / 500 - 0.3) < 0.06
    assert abs(statistics.correlation(failed_a, failed_b)) < 0.12
    both_answered = [
        (a[1], b[1]) for a, b in zip(outcomes["sim-a"], outcomes["sim-b"], strict=True) if not (a[0] or b[0])
    ]
    right_a, right_b = zip(*both_answered, strict=True)
    assert abs(statistics.correlation(right_a, right_b)) < 0.15


async def test_error_rate_is_spread_over_server_errors_and_rate_limits(session):
    fleet, client = await started(session, {"m": SimProfile(error_rate=0.5, **FAST)})
    try:
        statuses = [
            s
            for s, _, _ in await asyncio.gather(
                *(client.call("openai", "m", "What is 1 + 2? Answer with a number.") for _ in range(400))
            )
        ]
    finally:
        await fleet.stop()
    assert set(statuses) == {200, 429, 500}
    assert abs(sum(s != 200 for s in statuses) / 400 - 0.5) < 0.08
    counts = fleet.counters["m"]
    assert counts["server_error"] + counts["rate_limited"] == sum(s != 200 for s in statuses)


# --- injected failures ----------------------------------------------------------------------

# failure class -> expected (status, OpenAI code or type, Anthropic error type) for non-200 replies
ERROR_REPLIES = {
    "server_error": {"openai": (500, "server_error"), "anthropic": (529, "overloaded_error")},
    "rate_limited": {"openai": (429, "rate_limit_exceeded"), "anthropic": (429, "rate_limit_error")},
    "auth": {"openai": (401, "invalid_api_key"), "anthropic": (401, "authentication_error")},
    "bad_request": {"openai": (400, "invalid_request_error"), "anthropic": (400, "invalid_request_error")},
    "context_length": {"openai": (400, "context_length_exceeded"), "anthropic": (400, "invalid_request_error")},
}


def scripted(protocol, *steps, **extra):
    return SimProfile(protocol=protocol, script=list(steps), accuracy=1.0, **{**FAST, **extra})


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("failure", sorted(ERROR_REPLIES))
async def test_error_failures_have_protocol_status_and_body(fleet, protocol, failure):
    fleet, client = fleet
    model = MODEL_OF[protocol]
    fleet.set_profile(model, scripted(protocol, failure))
    status, headers, body = await client.call(protocol, model, "What is 1 + 1? Answer with a number.")
    expected_status, expected_kind = ERROR_REPLIES[failure][protocol]
    assert status == expected_status
    if protocol == "openai":
        assert set(body["error"]) == {"message", "type", "param", "code"}
        assert expected_kind in (body["error"]["code"], body["error"]["type"])
    else:
        assert body["type"] == "error" and body["error"]["type"] == expected_kind and body["error"]["message"]
    if failure == "rate_limited":
        assert headers["Retry-After"] == "1"
    if failure == "context_length" and protocol == "anthropic":
        assert "prompt is too long" in body["error"]["message"]
    assert fleet.counters[model][failure] == 1


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_content_policy_is_a_200_without_text(fleet, protocol):
    fleet, client = fleet
    model = MODEL_OF[protocol]
    fleet.set_profile(model, scripted(protocol, "content_policy"))
    status, _, body = await client.call(protocol, model, "What is 1 + 1? Answer with a number.")
    assert status == 200 and content_of(protocol, body) == ""
    if protocol == "openai":
        assert body["choices"][0]["finish_reason"] == "content_filter"
    else:
        assert body["stop_reason"] == "refusal"


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_invalid_output_is_a_200_without_an_answer(fleet, protocol):
    fleet, client = fleet
    model = MODEL_OF[protocol]
    fleet.set_profile(model, scripted(protocol, "invalid_output"))
    status, _, body = await client.call(protocol, model, "What is 1 + 1? Answer with a number.")
    assert status == 200 and content_of(protocol, body) == "I am not sure."
    assert extract_answer(content_of(protocol, body), "number") is None


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_network_failure_drops_the_connection(fleet, protocol):
    fleet, client = fleet
    model = MODEL_OF[protocol]
    fleet.set_profile(model, scripted(protocol, "network", "ok"))
    with pytest.raises(aiohttp.ClientError):
        await client.call(protocol, model, "What is 1 + 1? Answer with a number.")
    status, _, _ = await client.call(protocol, model, "What is 1 + 1? Answer with a number.")
    assert status == 200 and fleet.counters[model]["network"] == 1


async def test_timeout_outlasts_the_client_and_stop_is_immediate(session):
    fleet, client = await started(session, {"m": scripted("openai", "timeout", "timeout")})
    payload = openai_request("m", "What is 1 + 1? Answer with a number.")
    with pytest.raises(asyncio.TimeoutError):
        await client.post(OPENAI_PATH, payload, timeout=aiohttp.ClientTimeout(total=0.2))
    # a second call is still held when the fleet stops: stop() does not wait for it
    held = asyncio.create_task(client.post(OPENAI_PATH, payload))
    await wait_for(lambda: fleet.counters["m"]["calls"] == 2, timeout_s=5, what="the second call to arrive")
    started_at = time.perf_counter()
    await fleet.stop()
    assert time.perf_counter() - started_at < 1.0
    try:
        status, _, _ = await asyncio.wait_for(held, 1.0)
        assert status == 504
    except aiohttp.ClientError:
        pass  # the connection closed with the server: also a timely end
    assert fleet.counters["m"]["timeout"] == 2


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_script_is_played_in_order_then_normal_behaviour(fleet, protocol):
    fleet, client = fleet
    model = MODEL_OF[protocol]
    fleet.set_profile(model, scripted(protocol, "server_error", "rate_limited", "ok", "auth"))
    prompt = "What is 6 * 7? Answer with a number."
    statuses = [(await client.call(protocol, model, prompt))[0] for _ in range(6)]
    first_error = 500 if protocol == "openai" else 529
    assert statuses == [first_error, 429, 200, 401, 200, 200]
    counts = fleet.counters[model]
    assert counts["calls"] == 6 and counts["server_error"] == counts["rate_limited"] == counts["auth"] == 1
    assert counts["correct"] == 3
    fleet.reset()  # rewinds the script
    assert (await client.call(protocol, model, prompt))[0] == first_error


async def test_latency_follows_the_profile(session):
    fleet, client = await started(session, {"slow": SimProfile(latency_median_ms=40, latency_p99_ms=60)})
    try:
        prompt = "What is 1 + 1? Answer with a number."
        started_at = time.perf_counter()
        await asyncio.gather(*(client.call("openai", "slow", prompt) for _ in range(20)))
        elapsed_ms = (time.perf_counter() - started_at) * 1000
    finally:
        await fleet.stop()
    # 20 calls in parallel: about one call's latency, not twenty
    assert 25 < elapsed_ms < 400


async def test_serve_forever_reports_its_url_and_stops_when_cancelled(session):
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(serve_forever({"m": SimProfile(**FAST)}, "127.0.0.1", 0, on_ready=ready.set_result))
    base_url = await asyncio.wait_for(ready, 5)
    status, _, _ = await Client(base_url, session).call("openai", "m", "What is 1 + 1? Answer with a number.")
    assert status == 200
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_fleet_rejects_a_bad_profile_at_construction():
    with pytest.raises(ValueError, match="simulated model 'x'"):
        SimFleet({"x": SimProfile.model_construct(**{**SimProfile().model_dump(), "script": ["boom"]})})


async def test_serving_is_light(fleet):
    """~1,000 calls at 50 in flight; client and server share this process, so the CPU
    per call printed here covers both sides (the server's share is well under half)."""
    fleet, client = fleet
    tasks = demo_tasks(1000, seed=1)
    semaphore = asyncio.Semaphore(50)

    async def one(task):
        async with semaphore:
            return await client.call("openai", "gpt-sim", task.prompt)

    cpu, wall = time.process_time(), time.perf_counter()
    replies = await asyncio.gather(*(one(t) for t in tasks))
    cpu_ms, wall_s = (time.process_time() - cpu) * 1000 / len(tasks), time.perf_counter() - wall
    assert all(status == 200 for status, _, _ in replies)
    print(f"{len(tasks) / wall_s:.0f} calls/s, {cpu_ms:.2f} ms CPU per call (client + server)")
    assert cpu_ms < 5
