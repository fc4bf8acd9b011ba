"""The official ``openai`` and ``anthropic`` SDKs against the gateway, on the real broker,
a worker and the simulated fleet (issue 26): change the base URL, keep the code."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import anthropic
import httpx
import openai
import pytest
from swarmstream.streams.gateway.app import running_gateway
from swarmstream.streams.gateway.idempotency import Idempotency
from swarmstream.streams.gateway.settings import GatewaySettings

from tests.conftest import read_raw, wait_for
from tests.gateway.conftest import BROKE_KEY, KEY, SLOW_KEY, Served

QUESTION = "What is 20 + 22? Answer with a number."


def oai(served: Served, key: str = KEY) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{served.url}/v1", api_key=key, max_retries=0)


def claude(served: Served, key: str = KEY) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=served.url, api_key=key, max_retries=0)


async def test_a_plain_call_with_each_sdk(served: Served) -> None:
    raw = await oai(served).chat.completions.with_raw_response.create(
        model="fast-a", messages=[{"role": "user", "content": QUESTION}])
    completion = raw.parse()
    assert "42" in completion.choices[0].message.content
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.prompt_tokens > 0 and completion.usage.completion_tokens > 0
    assert raw.headers["x-swarm-status"] == "ok"
    assert raw.headers["x-swarm-models"] == "fast-a"
    assert completion.id == f"chatcmpl-{raw.headers['x-swarm-task-id']}"

    message = await claude(served).messages.create(model="fast-b", max_tokens=64,
                                                   messages=[{"role": "user", "content": QUESTION}])
    assert "42" in message.content[0].text
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens > 0


async def test_models_lists_models_and_routes(served: Served) -> None:
    names = [m.id async for m in oai(served).models.list()]
    assert {"fast-a", "swarm/consensus", "swarm/consensus:weighted", "chain/two", "select/thompson",
            "math-vote"} <= set(names)


async def test_streams_parsed_by_the_sdk_stream_helpers(served: Served) -> None:
    async with oai(served).chat.completions.stream(
            model="swarm/consensus", messages=[{"role": "user", "content": QUESTION}],
            stream_options={"include_usage": True}, extra_body={"swarm": {"models": ["slow"], "timeout_ms": 20_000}},
    ) as stream:
        kinds = [event.type async for event in stream]
        final = await stream.get_final_completion()
    assert "42" in final.choices[0].message.content
    assert final.usage is not None and final.usage.completion_tokens > 0
    assert kinds[0] == "chunk" and "content.done" in kinds

    async with claude(served).messages.stream(model="fast-c", max_tokens=64,
                                              messages=[{"role": "user", "content": QUESTION}]) as stream:
        text = "".join([t async for t in stream.text_stream])
        message = await stream.get_final_message()
    assert "42" in text
    assert message.stop_reason == "end_turn" and message.usage.output_tokens > 0


async def test_a_stream_sends_the_role_chunk_and_keep_alives_before_the_answer(served: Served) -> None:
    """The slow model answers after ~5 s; the first event comes at once and pings keep the line alive."""
    lines: list[str] = []
    async with httpx.AsyncClient(timeout=30) as http, http.stream(
            "POST", f"{served.url}/v1/messages", headers={"x-api-key": KEY},
            json={"model": "slow", "max_tokens": 32, "stream": True, "messages": [{"role": "user", "content": QUESTION}]},
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        async for line in response.aiter_lines():
            lines.append(line)
    events = [line.removeprefix("event: ") for line in lines if line.startswith("event: ")]
    assert events[0] == "message_start" and events[1] == "ping"
    assert events[-5:] == ["content_block_start", "content_block_delta", "content_block_stop", "message_delta",
                           "message_stop"]
    assert "42" in "".join(lines)


async def test_a_consensus_route_reports_its_agreement(served: Served) -> None:
    raw = await oai(served).chat.completions.with_raw_response.create(
        model="math-vote", messages=[{"role": "user", "content": QUESTION}])
    completion = raw.parse()
    assert completion.choices[0].message.content == "42"
    assert float(raw.headers["x-swarm-agreement"]) == 1.0
    assert raw.headers["x-swarm-models"] == "fast-a,fast-b,fast-c"
    swarm = completion.model_extra["swarm"]
    assert sorted(v["model"] for v in swarm["votes"]) == ["fast-a", "fast-b", "fast-c"]
    assert completion.usage.prompt_tokens > 0  # summed over the three calls

    raw = await oai(served).chat.completions.with_raw_response.create(
        model="swarm/consensus:weighted", messages=[{"role": "user", "content": QUESTION}],
        extra_body={"swarm": {"answer_type": "number"}})
    assert raw.parse().model_extra["swarm"]["strategy"].startswith("weighted")
    assert raw.headers["x-swarm-agreement"]


async def test_a_chain_whose_primary_fails_and_a_select_route(served: Served) -> None:
    raw = await oai(served).chat.completions.with_raw_response.create(
        model="chain/two", messages=[{"role": "user", "content": QUESTION}])
    swarm = raw.parse().model_extra["swarm"]
    assert swarm["answered_by"] == "fast-a"
    assert [(a["model"], a["failure"]) for a in swarm["attempts"]] == [("flaky", "server_error"), ("fast-a", None)]
    assert "42" in raw.parse().choices[0].message.content

    message = await claude(served).messages.with_raw_response.create(
        model="select/thompson", max_tokens=64, messages=[{"role": "user", "content": QUESTION}],
        extra_body={"swarm": {"models": ["fast-a", "fast-b"], "category": "math"}})
    assert message.headers["x-swarm-status"] == "ok"
    assert (await message.parse()).model_extra["swarm"]["mode"] == "select"


async def test_a_multi_turn_chat_reaches_the_model_whole(served: Served) -> None:
    completion = await oai(served).chat.completions.create(model="fast-a", messages=[
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is 2 + 3? Answer with a number."},
        {"role": "assistant", "content": "5"},
        {"role": "user", "content": QUESTION},
    ])
    assert "42" in completion.choices[0].message.content  # answers the last turn
    message = await claude(served).messages.create(model="fast-a", max_tokens=64, system="Be brief.", messages=[
        {"role": "user", "content": "What is 2 + 3? Answer with a number."},
        {"role": "assistant", "content": "5"},
        {"role": "user", "content": QUESTION},
    ])
    assert "42" in message.content[0].text


CALCULATOR = {"name": "calculator", "description": "evaluates arithmetic",
              "parameters": {"type": "object", "properties": {"expression": {"type": "string"}},
                             "required": ["expression"]}}


async def test_a_client_side_tool_call_round_trip_in_both_protocols(served: Served) -> None:
    client = oai(served)
    messages: list[dict] = [{"role": "user", "content": "What is 17 * 23? Answer with a number."}]
    first = await client.chat.completions.create(model="swarm/consensus", messages=messages,
                                                 tools=[{"type": "function", "function": CALCULATOR}])
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls
    assert call.function.name == "calculator" and "17 * 23" in call.function.arguments
    assert first.model_extra["swarm"]["agreement"] == 1.0  # the three models proposed the same call
    messages += [choice.message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": "391"}]
    second = await client.chat.completions.create(model="swarm/consensus", messages=messages,
                                                  tools=[{"type": "function", "function": CALCULATOR}])
    assert second.choices[0].finish_reason == "stop"
    assert "391" in second.choices[0].message.content

    tool = {"name": "calculator", "description": "evaluates arithmetic", "input_schema": CALCULATOR["parameters"]}
    chat: list[dict] = [{"role": "user", "content": "What is 17 * 23? Answer with a number."}]
    first_message = await claude(served).messages.create(model="fast-a", max_tokens=64, messages=chat, tools=[tool])
    assert first_message.stop_reason == "tool_use"
    use = first_message.content[0]
    assert use.name == "calculator" and use.input == {"expression": "17 * 23"}
    chat += [{"role": "assistant", "content": [b.model_dump() for b in first_message.content]},
             {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "391"}]}]
    second_message = await claude(served).messages.create(model="fast-a", max_tokens=64, messages=chat, tools=[tool])
    assert "391" in second_message.content[0].text


async def test_each_error_raises_the_sdk_s_own_class(served: Served) -> None:
    question = [{"role": "user", "content": QUESTION}]
    with pytest.raises(openai.AuthenticationError):
        await oai(served, "sk-wrong").chat.completions.create(model="fast-a", messages=question)
    with pytest.raises(anthropic.AuthenticationError):
        await claude(served, "sk-wrong").messages.create(model="fast-a", max_tokens=8, messages=question)

    with pytest.raises(openai.BadRequestError) as bad:
        await oai(served).chat.completions.create(model="fast-a", messages=question,
                                                  extra_body={"swarm": {"min_models": -1}})
    assert bad.value.param == "swarm.min_models"
    with pytest.raises(openai.BadRequestError) as bad:
        await oai(served).chat.completions.create(model="fast-a", messages=question, temperature=7)
    assert bad.value.param == "temperature"
    with pytest.raises(anthropic.BadRequestError, match="swarm.nonsense"):
        await claude(served).messages.create(model="fast-a", max_tokens=8, messages=question,
                                             extra_headers={"x-swarm": '{"nonsense": 1}'})
    with pytest.raises(openai.NotFoundError):
        await oai(served).chat.completions.create(model="no-such-model", messages=question)

    slow = oai(served, SLOW_KEY)
    await slow.chat.completions.create(model="fast-a", messages=question)  # the burst of one
    with pytest.raises(openai.RateLimitError):
        await slow.chat.completions.create(model="fast-a", messages=question)
    with pytest.raises(anthropic.RateLimitError, match="budget"):
        await claude(served, BROKE_KEY).messages.create(model="fast-a", max_tokens=8, messages=question)

    with pytest.raises(openai.InternalServerError) as late:
        await oai(served).chat.completions.with_raw_response.create(
            model="slow", messages=question, extra_body={"swarm": {"timeout_ms": 300}})
    assert late.value.status_code == 504
    task_id = late.value.response.headers["x-swarm-task-id"]
    assert task_id in late.value.message

    # shedding: an instance at its in-flight limit answers 503 at once
    config = GatewaySettings(port=0, instance="gw-full", max_in_flight=1)
    async with running_gateway(served.stack.settings, config, served.stack.broker_url) as (full, url):
        client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="open", max_retries=0)
        waiting = asyncio.ensure_future(client.chat.completions.create(
            model="slow", messages=question, extra_body={"swarm": {"timeout_ms": 8000}}))
        await wait_for(lambda: full.replies.waiting >= 1, timeout_s=20, what="the first request in flight")
        with pytest.raises(openai.InternalServerError) as shed:
            await client.chat.completions.create(model="fast-a", messages=question)
        assert shed.value.status_code == 503
        with pytest.raises(anthropic.InternalServerError) as shed_claude:
            await anthropic.AsyncAnthropic(base_url=url, api_key="open", max_retries=0).messages.create(
                model="fast-a", max_tokens=8, messages=question)
        assert shed_claude.value.status_code == 503
        assert "42" in (await waiting).choices[0].message.content


async def test_an_idempotency_key_retried_three_times_is_one_task(served: Served) -> None:
    client = oai(served)
    sent = served.gateway.sent
    replies = await asyncio.gather(*(
        client.chat.completions.with_raw_response.create(
            model="swarm/consensus", messages=[{"role": "user", "content": QUESTION}],
            extra_headers={"Idempotency-Key": "order-7"})
        for _ in range(3)))
    assert len({r.headers["x-swarm-task-id"] for r in replies}) == 1
    assert served.gateway.sent == sent + 1
    again = await client.chat.completions.with_raw_response.create(
        model="swarm/consensus", messages=[{"role": "user", "content": QUESTION}],
        extra_headers={"Idempotency-Key": "order-7"})
    assert again.headers["x-swarm-task-id"] == replies[0].headers["x-swarm-task-id"]
    assert served.gateway.sent == sent + 1
    with pytest.raises(openai.BadRequestError, match="different request body"):
        await client.chat.completions.create(model="swarm/consensus", messages=[{"role": "user", "content": "Other?"}],
                                             extra_headers={"Idempotency-Key": "order-7"})

    served.gateway.idempotency = Idempotency()  # the memory a restart (or another instance) would not have
    after = await client.chat.completions.with_raw_response.create(
        model="swarm/consensus", messages=[{"role": "user", "content": QUESTION}],
        extra_headers={"Idempotency-Key": "order-7", "x-stainless-retry-count": "1"})
    assert after.headers["x-swarm-task-id"] == replies[0].headers["x-swarm-task-id"]
    assert served.gateway.sent == sent + 1  # found by id: not sent again, not paid again


async def test_a_result_is_fetchable_by_task_id(served: Served) -> None:
    raw = await oai(served).chat.completions.with_raw_response.create(
        model="fast-a", messages=[{"role": "user", "content": QUESTION}])
    task_id = raw.headers["x-swarm-task-id"]
    async with httpx.AsyncClient() as http:
        found = await http.get(f"{served.url}/v1/swarm/tasks/{task_id}", headers={"authorization": f"Bearer {KEY}"})
        missing = await http.get(f"{served.url}/v1/swarm/tasks/nope", headers={"authorization": f"Bearer {KEY}"})
    assert found.status_code == 200 and found.json()["answer"] == raw.parse().choices[0].message.content
    assert missing.status_code == 404


async def test_no_key_reaches_a_topic_or_an_error(served: Served, broker_url: str) -> None:
    """Run last in the module: every task above went through with KEY (or another key)."""
    with pytest.raises(openai.AuthenticationError) as refused:
        await oai(served, "sk-secret-wrong-key").chat.completions.create(
            model="fast-a", messages=[{"role": "user", "content": QUESTION}])
    assert "sk-secret-wrong-key" not in refused.value.response.text
    topics = served.stack.settings.topics
    for topic in (topics.tasks, topics.results, served.gateway.replies.topic):
        records = await read_raw(broker_url, topic, until=lambda records: False, timeout_s=1.5)
        assert records, topic
        for record in records:
            blob = (record.value or b"") + b"".join(v for _, v in record.headers or ())
            for key in (KEY, SLOW_KEY, BROKE_KEY):
                assert key.encode() not in blob, topic


async def test_the_readme_s_two_line_switch_works_as_written(served: Served) -> None:
    """The README's OpenAI SDK example, run as written against an open gateway on its default port."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("### From an OpenAI or Anthropic SDK app", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    config = GatewaySettings(instance="gw-readme")  # the defaults: 127.0.0.1:8080, no keys
    with socket.socket() as probe:
        free = probe.connect_ex(("127.0.0.1", config.port)) != 0
    if not free:  # something else holds 8080 here: the same code on another port
        config = GatewaySettings(instance="gw-readme", port=0)
    async with running_gateway(served.stack.settings, config, served.stack.broker_url) as (_, url):
        namespace: dict = {}
        await asyncio.to_thread(exec, code.replace("http://127.0.0.1:8080", url), namespace)
    reply = namespace["reply"]
    assert reply.choices[0].message.content and reply.model_extra["swarm"]["status"] in ("ok", "low_consensus")
