"""Hostile input on the decoders: ``swarmstream bench codec [--quick] [--json]``.

Issue 20 asks that no record stop a worker. Before it, the compiled Avro reader's varint
loop had no end but the bytes': the single-object marker ``C3 01``, a valid TaskRequest
fingerprint and a run of ``0xFF`` made it build one ever-larger integer, quadratic in the
run (256 KiB took 4.5 s, 512 KiB held a worker ~15 s). Timed here, each the best of
``repeats`` single decodes (``time.perf_counter``), in milliseconds, each ending in a
``DecodeError``:

- ``crafted_varint_1mib_ms``: 1 MiB (exactly ``MAX_RECORD_BYTES``, so the size check lets
  it through to the reader) of marker + TaskRequest fingerprint + ``0xFF`` run, through
  ``codec().decode`` (the path of every topic but the task topic);
- ``crafted_varint_1mib_other_writer_ms``: the same run after the fingerprint of a writer
  schema the reader was taught (``register_writer``), the path through fastavro;
- ``crafted_varint_1mib_task_ms``: the crafted record on the task topic (``decode_task``):
  refused by size before it is read (``MAX_TASK_RECORD_BYTES``);
- ``random_1mib_ms``: marker + fingerprint + 1 MiB of seeded random bytes;
- ``nested_json_1mib_ms``: 1 MiB of ``[[[...]]]`` as a JSON task (orjson stops at depth 1,024);
- ``nested_json_1000_deep_ms``: an object nested 1,000 deep inside a task padded to 1 MiB
  (under orjson's cap: our own depth limit refuses it);
- ``wide_json_1mib_ms``: a task whose ``labels`` are ~200,000 one-letter strings (1 MiB),
  the most items a JSON task can make the depth check and the validator look at.

For reference, a valid 186-byte TaskRequest (``timeit``, best of 5, in microseconds):
``valid_task_encode_us``, ``valid_task_decode_us`` (``decode_task``: decode and validation,
what intake does per task) and ``valid_task_decode_raw_us`` (the compiled reader alone).
``--quick`` takes fewer repeats (3 instead of 10, and fewer timeit loops).
"""

from __future__ import annotations

import random
import time
import timeit
from collections.abc import Callable, Mapping
from typing import Any

from swarmstream.schemas.codec import AvroCodec, DecodeError, codec, decode_task
from swarmstream.schemas.models import TaskRequest

SEED = 20240611
MIB = 1024 * 1024
HEADER_BYTES = 10  # marker (2) + fingerprint (8)
JSON_HEADER = {"content-type": b"application/json"}
OTHER_WRITER = {
    "type": "record", "name": "TaskRequestV0", "namespace": "bench",
    "fields": [{"name": "task_id", "type": "string"}, {"name": "created_ms", "type": "long"},
               {"name": "labels", "type": {"type": "array", "items": "string"}}],
}


def _reference_task() -> TaskRequest:
    return TaskRequest(task_id="t-1", created_ms=1_700_000_000_000, prompt="Is 7 prime? Answer yes or no." * 3,
                       labels=["yes", "no"], models=["a", "b", "c"], metadata={"trace": "x"}, category="math")


def _rejected_ms(decode: Callable[[], Any], repeats: int) -> tuple[float, str]:
    """Best of ``repeats`` single decodes, in ms, and the reason the last one gave."""
    best, reason = float("inf"), ""
    for _ in range(repeats):
        started = time.perf_counter()
        try:
            decode()
        except DecodeError as exc:
            reason = str(exc)
        else:
            raise AssertionError("a hostile input decoded")
        best = min(best, time.perf_counter() - started)
    return round(best * 1000, 3), reason


def _per_call_us(call: Callable[[], Any], number: int) -> float:
    return round(min(timeit.repeat(call, number=number, repeat=5)) / number * 1e6, 2)


def hostile_inputs() -> dict[str, Callable[[], Any]]:
    """Each input's decode, ready to call (the bytes are built once, not timed)."""
    task_bytes = codec().encode(_reference_task())
    head = task_bytes[:HEADER_BYTES]
    crafted = head + b"\xff" * (MIB - HEADER_BYTES)
    other = AvroCodec()
    other_head = b"\xc3\x01" + other.register_writer(OTHER_WRITER)
    other_crafted = other_head + b"\xff" * (MIB - HEADER_BYTES)
    noise = random.Random(SEED).randbytes(MIB - HEADER_BYTES)
    nested = b"[" * (MIB // 2) + b"]" * (MIB // 2)
    deep = b'{"a":' * 1000 + b"1" + b"}" * 1000
    padding = b"x" * (MIB - len(deep) - 64)
    nested_1000 = b'{"prompt": "' + padding + b'", "metadata": ' + deep + b"}"
    labels = b'"a",' * ((MIB - 64) // 4)
    wide = b'{"prompt": "x", "labels": [' + labels.rstrip(b",") + b"]}"
    return {
        "crafted_varint_1mib_ms": lambda: codec().decode(crafted),
        "crafted_varint_1mib_other_writer_ms": lambda: other.decode(other_crafted),
        "crafted_varint_1mib_task_ms": lambda: decode_task(crafted),
        "random_1mib_ms": lambda: codec().decode(head + noise),
        "nested_json_1mib_ms": lambda: decode_task(nested, JSON_HEADER),
        "nested_json_1000_deep_ms": lambda: decode_task(nested_1000, JSON_HEADER),
        "wide_json_1mib_ms": lambda: decode_task(wide, JSON_HEADER),
    }


def run(*, quick: bool) -> dict[str, Any]:
    repeats = 3 if quick else 10
    result: dict[str, Any] = {"repeats": repeats, "reasons": {}}
    for name, decode in hostile_inputs().items():
        result[name], result["reasons"][name] = _rejected_ms(decode, repeats)
    task = _reference_task()
    data = codec().encode(task)
    compiled = codec()._writers[data[2:HEADER_BYTES]].compiled  # the reader alone
    assert compiled is not None
    number = 2_000 if quick else 20_000
    result["valid_task_bytes"] = len(data)
    result["valid_task_encode_us"] = _per_call_us(lambda: codec().encode(task), number)
    result["valid_task_decode_us"] = _per_call_us(lambda: decode_task(data), number)
    result["valid_task_decode_raw_us"] = _per_call_us(lambda: compiled(data, HEADER_BYTES), number)
    assert decode_task(data) == task
    return result


def render(result: Mapping[str, Any]) -> str:
    lines = [f"hostile input, each refused with a DecodeError (best of {result['repeats']}):", ""]
    for name, reason in result["reasons"].items():
        lines.append(f"  {name:<40} {result[name]:>9.3f} ms   {reason[:70]}")
    lines += [
        "",
        f"a valid TaskRequest ({result['valid_task_bytes']} bytes): encode {result['valid_task_encode_us']} us, "
        f"decode_task {result['valid_task_decode_us']} us (compiled reader alone "
        f"{result['valid_task_decode_raw_us']} us)",
    ]
    return "\n".join(lines)

