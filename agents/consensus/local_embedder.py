"""A local sentence embedder through fastembed (ONNX, CPU): the optional extra ``[embed]``.

``pip install 'swarmstream[embed]'``, then ``SWARM_EMBEDDINGS_LOCAL`` names a fastembed model
(``sentence-transformers/all-MiniLM-L6-v2``, downloaded from its hub on first use) or a directory
holding one already (an ONNX export with its tokenizer files: machines without a network). The
consensus agent uses it as it uses an ``/v1/embeddings`` model (``embeddings.TextEmbeddings``:
one batch per task, cached by digest), run in a thread so the event loop does not wait on it.

Not exercised by the test suite (no model can be fetched there, and none ships with the
package); the ``/v1/embeddings`` embedder is the tested path. Its default threshold is the one
measured for MiniLM (``embeddings.API_THRESHOLD``): a different model needs its own,
``SWARM_EMBEDDINGS_THRESHOLD``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from swarmstream.agents.models.failures import FailureClass, ProviderError

EXTRA = "embed"


class FastembedEmbedder:
    """Embeds with a fastembed model loaded once, at construction."""

    def __init__(self, model: str) -> None:
        try:
            from fastembed import TextEmbedding  # the optional extra
        except ImportError as exc:
            raise RuntimeError(f"SWARM_EMBEDDINGS_LOCAL={model!r} needs fastembed: pip install "
                               f"'swarmstream[{EXTRA}]'") from exc
        path = Path(model)
        if path.is_dir():
            self._model = TextEmbedding(model_name=path.name, specific_model_path=str(path))
        else:
            self._model = TextEmbedding(model_name=model)
        self.name = f"local:{path.name if path.is_dir() else model}"

    def embed_now(self, texts: Sequence[str]) -> list[list[float]]:
        return [vector.tolist() for vector in self._model.embed(list(texts))]

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        try:
            return await asyncio.to_thread(self.embed_now, texts)
        except Exception as exc:  # the library's own errors: the agent falls back to lexical
            raise ProviderError(FailureClass.SERVER_ERROR, f"local embedder: {type(exc).__name__}: {exc}",
                                retryable=False) from exc
