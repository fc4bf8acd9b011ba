"""The OpenAI-compatible ``/v1/embeddings`` call: texts in, one vector per text out.

OpenAI, vLLM, Ollama (``/v1``), TEI and the simulated fleet all serve this shape
(``{"model", "input": [texts]}`` -> ``{"data": [{"index", "embedding"}]}``), so one client
covers every catalog model with the ``embeddings`` capability. Like a chat call it goes
through the pooled HTTP edge (``http.py``): one POST, no hidden retry, bounded in time, and
any failure leaves as a ``ProviderError`` whose message never holds the key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import orjson
from swarmstream.agents.models.catalog import ModelSpec
from swarmstream.agents.models.failures import FailureClass, ProviderError
from swarmstream.agents.models.http import ClientPool, post_json

EMBEDDINGS_CAPABILITY = "embeddings"
"""A catalog model with this capability serves ``/v1/embeddings`` (and is one of the embedders)."""

EMBEDDINGS_TIMEOUT_S = 10.0
"""An embeddings batch of one task's answers takes tens of ms; past this the clustering falls back
to the lexical embedder rather than hold the task."""


class HttpEmbeddings:
    """Embeds texts with one catalog model over HTTP. The key is held only for the header."""

    def __init__(self, spec: ModelSpec, pool: ClientPool, *, api_key: str | None = None) -> None:
        if spec.endpoint is None:
            raise ValueError(f"embeddings model {spec.id!r} has no endpoint")
        headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self._target = pool.target(spec.endpoint, "embeddings", headers)
        self._secrets = (api_key,) if api_key else ()
        self.spec = spec
        self.name = spec.id

    def __repr__(self) -> str:
        return f"HttpEmbeddings(model={self.spec.id!r}, endpoint={self.spec.endpoint!r})"

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        raw = await post_json(self._target, body={"model": self.spec.upstream, "input": list(texts)},
                              timeout_s=min(self.spec.timeout_s, EMBEDDINGS_TIMEOUT_S), secrets=self._secrets)
        if not 200 <= raw.status_code < 300:
            raise ProviderError(FailureClass.SERVER_ERROR if raw.status_code >= 500 else FailureClass.BAD_REQUEST,
                                f"embeddings: HTTP {raw.status_code}", status_code=raw.status_code,
                                secrets=self._secrets)
        return parse_embeddings(raw.body, len(texts))


def parse_embeddings(body: bytes, count: int) -> list[list[float]]:
    """The vectors of a ``/v1/embeddings`` response, in input order; ProviderError if malformed."""
    try:
        data = orjson.loads(body)["data"]
        vectors: dict[int, list[float]] = {int(item["index"]): [float(x) for x in item["embedding"]] for item in data}
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ProviderError(FailureClass.INVALID_OUTPUT, f"embeddings: malformed response ({type(exc).__name__})",
                            retryable=False) from None
    if sorted(vectors) != list(range(count)):
        raise ProviderError(FailureClass.INVALID_OUTPUT, f"embeddings: {len(vectors)} vectors for {count} texts",
                            retryable=False)
    return [vectors[i] for i in range(count)]


def embeddings_models(models: Mapping[str, ModelSpec]) -> list[ModelSpec]:
    return [spec for spec in models.values() if EMBEDDINGS_CAPABILITY in spec.capabilities]
