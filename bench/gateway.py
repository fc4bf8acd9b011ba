"""The gateway's cost: ``swarmstream bench gateway [--quick] [--json]``.

Question: what does putting the gateway (HTTP -> task on Kafka -> worker -> model ->
result -> HTTP) in front of a model add, over calling the model directly?

Setup: the embedded broker, one worker, the simulated fleet (``fast-a``: a 2 ms median
model), and the gateway in its own process (``python -m swarmstream.streams.gateway.app``),
so its CPU is its own. The load generator is this process (aiohttp), open loop: requests
start at a fixed rate whatever the answers do, for :data:`SECONDS` per rate.

- ``overhead_ms`` by rate: p50 and p99 of (gateway latency) minus the same percentile of
  the direct call to the fleet at the same rate;
- the same rates through ``SwarmClient`` (``client_p50``/``client_p99``: the pipeline without
  HTTP or the gateway), so the added latency splits into the gateway's and the pipeline's;
- ``cpu_ms_per_request``: CPU time of the gateway process and of the worker process over
  the gateway phases, divided by the requests;
- ``sequential_ms_p50``: one request at a time, p50 of the gateway, of ``SwarmClient`` on the
  same pipeline (no HTTP, no gateway) and of the model directly: how the added latency splits
  between the gateway and the pipeline behind it;
- ``ttfb_ms_p50``: time to the first byte of a streamed response (the role chunk, sent
  before the task runs), and ``ttfc_ms_p50`` to its content.

The machine is shared (two cores, other work on them): the numbers move from run to run.
"""

from __future__ import annotations

import asyncio
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from swarmstream.schemas.models import TaskRequest
from swarmstream.streams.app.settings import Settings
from swarmstream.streams.cli.runtime import running_stack, unique_settings

RATES = (10, 100, 300)
SEQUENTIAL = 40
SECONDS = 8.0
QUICK_SECONDS = 3.0
STREAMS = 50
QUESTION = "What is 20 + 22? Answer with a number."
FLEET = Path(__file__).resolve().parent.parent / "tests" / "fleet.yaml"


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def _open_loop(send: Any, rate: int, seconds: float) -> tuple[list[float], int]:
    """Start ``rate`` requests a second for ``seconds``; latencies (ms) of those answered 200."""
    latencies: list[float] = []
    failed = 0

    async def one() -> None:
        nonlocal failed
        started = time.perf_counter()
        try:
            ok = await send()
        except (aiohttp.ClientError, TimeoutError):
            ok = False
        if ok:
            latencies.append((time.perf_counter() - started) * 1000)
        else:
            failed += 1

    tasks = []
    start = time.perf_counter()
    for i in range(int(rate * seconds)):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(one()))
    await asyncio.gather(*tasks)
    return latencies, failed


async def _run(quick: bool) -> dict[str, Any]:
    seconds = QUICK_SECONDS if quick else SECONDS
    settings = unique_settings(Settings(models=FLEET), admit_queue_share=0.0)
    async with running_stack(settings, workers=1, log_dir=Path(tempfile.mkdtemp())) as stack:
        env = {**os.environ, "SWARM_BROKER": stack.broker_url, "SWARM_TOPIC_PREFIX": stack.settings.topic_prefix,
               "SWARM_MODELS": str(stack.settings.models), "SWARM_GATEWAY_PORT": "0",
               "SWARM_GATEWAY_INSTANCE": "gw-bench"}
        gateway = subprocess.Popen([sys.executable, "-m", "swarmstream.streams.gateway.app"], env=env,  # noqa: ASYNC220
                                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            assert gateway.stdout is not None
            line = await asyncio.wait_for(asyncio.to_thread(gateway.stdout.readline), timeout=60)
            match = re.search(r"on (http://\S+)/v1", line)
            if not match:
                raise RuntimeError(f"the gateway did not start: {line!r}")
            url = match[1]
            fleet = stack.settings.sim_url
            body = {"model": "fast-a", "messages": [{"role": "user", "content": QUESTION}], "max_tokens": 32}
            connector = aiohttp.TCPConnector(limit=0)  # aiohttp: a lighter client than httpx on a busy core
            async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as http:
                async def direct() -> bool:
                    async with http.post(f"{fleet}/chat/completions", json=body) as response:
                        await response.read()
                        return response.status == 200

                async def via_gateway() -> bool:
                    async with http.post(f"{url}/v1/chat/completions", json=body) as response:
                        await response.read()
                        return response.status == 200

                async def via_client() -> bool:  # the same pipeline without HTTP or the gateway
                    task = TaskRequest(prompt=QUESTION, mode="single", models=["fast-a"], answer_type="text",
                                       max_tokens=32)
                    await stack.client.submit(task)
                    result = await stack.client.result(task.task_id, timeout_s=60)
                    stack.client.forget(task.task_id)
                    return result.status == "ok"

                for _ in range(20):  # warm connections and the worker's first calls
                    await via_gateway()
                    await direct()
                rows: dict[str, Any] = {}
                cpu = {"gateway": 0.0, "worker": 0.0}
                requests = 0
                for rate in RATES:
                    base, base_failed = await _open_loop(direct, rate, seconds)
                    cpu_before = (_cpu_s(gateway.pid), _cpu_s(stack.workers[0].pid))
                    lat, lat_failed = await _open_loop(via_gateway, rate, seconds)
                    cpu_after = (_cpu_s(gateway.pid), _cpu_s(stack.workers[0].pid))
                    pipeline, pipeline_failed = await _open_loop(via_client, rate, seconds)
                    cpu["gateway"] += cpu_after[0] - cpu_before[0]
                    cpu["worker"] += cpu_after[1] - cpu_before[1]
                    requests += int(rate * seconds)
                    print(f"  {rate}/s: direct p50 {_pct(base, 0.5):.1f} ms, gateway p50 {_pct(lat, 0.5):.1f} ms, "
                          f"SwarmClient p50 {_pct(pipeline, 0.5):.1f} ms",
                          file=sys.stderr, flush=True)
                    rows[str(rate)] = {
                        "p50": round(_pct(lat, 0.5) - _pct(base, 0.5), 2),
                        "p99": round(_pct(lat, 0.99) - _pct(base, 0.99), 2),
                        "gateway_p50": round(_pct(lat, 0.5), 2), "gateway_p99": round(_pct(lat, 0.99), 2),
                        "direct_p50": round(_pct(base, 0.5), 2), "direct_p99": round(_pct(base, 0.99), 2),
                        "client_p50": round(_pct(pipeline, 0.5), 2), "client_p99": round(_pct(pipeline, 0.99), 2),
                        "answered": len(lat), "failed": lat_failed + base_failed + pipeline_failed,
                    }
                sequential = {"gateway": [], "client": [], "direct": []}
                for _ in range(SEQUENTIAL):  # one at a time: the floor, and where it goes
                    started = time.perf_counter()
                    await via_gateway()
                    sequential["gateway"].append((time.perf_counter() - started) * 1000)
                    started = time.perf_counter()
                    task = TaskRequest(prompt=QUESTION, mode="single", models=["fast-a"], answer_type="text",
                                       max_tokens=32)
                    await stack.client.submit(task)
                    await stack.client.result(task.task_id, timeout_s=60)
                    sequential["client"].append((time.perf_counter() - started) * 1000)
                    started = time.perf_counter()
                    await direct()
                    sequential["direct"].append((time.perf_counter() - started) * 1000)
                ttfb: list[float] = []
                ttfc: list[float] = []
                for _ in range(STREAMS):
                    started = time.perf_counter()
                    async with http.post(f"{url}/v1/chat/completions", json={**body, "stream": True}) as resp:
                        first = True
                        async for chunk in resp.content.iter_any():
                            now = (time.perf_counter() - started) * 1000
                            if first:
                                ttfb.append(now)
                                first = False
                            if b'"content":"' in chunk and b'"content":""' not in chunk:
                                ttfc.append(now)
                                break
        finally:
            gateway.kill()
            gateway.wait(timeout=10)
    return {
        "overhead_ms": rows,
        "cpu_ms_per_request": {k: round(v * 1000 / max(requests, 1), 3) for k, v in cpu.items()},
        "sequential_ms_p50": {k: round(statistics.median(v), 2) for k, v in sequential.items()},
        "ttfb_ms_p50": round(statistics.median(ttfb), 2) if ttfb else None,
        "ttfc_ms_p50": round(statistics.median(ttfc), 2) if ttfc else None,
        "seconds_per_rate": seconds,
        "machine": "shared 2-core host, other work running: numbers vary run to run",
    }


def run(*, quick: bool) -> dict[str, Any]:
    return asyncio.run(_run(quick))


def render(result: dict[str, Any]) -> str:
    lines = ["rate/s  overhead p50  overhead p99  (gateway, SwarmClient, direct: p50/p99 ms)  answered  failed"]
    for rate, row in result["overhead_ms"].items():
        lines.append(f"{rate:>6}  {row['p50']:>12}  {row['p99']:>12}  ({row['gateway_p50']}/{row['gateway_p99']}, "
                     f"{row['client_p50']}/{row['client_p99']}, {row['direct_p50']}/{row['direct_p99']})  "
                     f"{row['answered']:>8}  {row['failed']:>6}")
    cpu = result["cpu_ms_per_request"]
    lines.append(f"CPU ms/request: gateway {cpu['gateway']}, worker {cpu['worker']}")
    seq = result["sequential_ms_p50"]
    lines.append(f"one at a time, p50 ms: gateway {seq['gateway']}, SwarmClient on the same pipeline {seq['client']}, "
                 f"the model directly {seq['direct']}")
    lines.append(f"streaming: first byte p50 {result['ttfb_ms_p50']} ms, content p50 {result['ttfc_ms_p50']} ms")
    lines.append(result["machine"])
    return "\n".join(lines)
