"""The gate: the only way any feature calls a model (DESIGN §3).

`completion_stream` and `embedding_create`:
1. resolve the credential the caller may `use`, and its adapter from the preset;
2. reserve budget and clamp `max_tokens` (billing.budgets);
3. stream provider-neutral events, retrying 429/5xx/connect errors only before the first token;
   enforce `max_tokens` (counted cheaply as it goes) and the maximum reply size; a stream that
   ends without the provider saying it finished is `stream_interrupted`;
4. keep exactly one usage row per call, crash-proof: opened (`running`) before the provider is
   called, checkpointed about once a second, settled in `finally` — success, error, stop,
   disconnect and graceful shutdown alike; a process that dies leaves a row the ledger's sweep
   settles from its checkpoint (billing.services);
5. measure time to first token (without retry back-off), tokens/s and its own overhead.

ORM work happens in a few hops per call (prepare + open, a checkpoint a second, settle), never
per token; each hands its database connection back to the pool (`workbench.connections.hop`), so
no provider wait holds one. The prepare hop also takes the call's slot under the user's
concurrency cap (providers.concurrency), the settle hop frees it. Local token counting runs in
its own thread, bounded (tokens.py).
Callers must iterate with `contextlib.aclosing(...)` so a stop closes the stream at once.

`providers.gate` is the entry point callers import; the modules split it by concept:
calls (what one call is), preparation (access, request check, admission), streaming
(`completion_stream`), deadlines (idle/total timeouts around the adapter), retries,
settlement (checkpoints, counting, the usage row settled), lifecycle (live calls, graceful
shutdown), embeddings (`embedding_create`).
"""

from providers.gate.calls import CallControl, default_timeouts, max_attempts, max_reply_chars
from providers.gate.embeddings import embedding_create
from providers.gate.lifecycle import live_ids, shutdown, shutting_down
from providers.gate.streaming import completion_stream

__all__ = [
    "CallControl",
    "completion_stream",
    "default_timeouts",
    "embedding_create",
    "live_ids",
    "max_attempts",
    "max_reply_chars",
    "shutdown",
    "shutting_down",
]
