"""The gateway: our API in other vendors' wire formats (DESIGN §3).

`/v1/chat/completions`, `/v1/models`, `/v1/embeddings` (OpenAI) and `/anthropic/v1/messages`
(Anthropic) let existing SDKs and tools use any model a Workbench user may use, with our API
tokens, budgets and ledger. Thin translators: the vendor's request → one gate call
(`completion_stream` / `embedding_create`), our events → the vendor's stream shape.

- names.py — model names (`<credential slug>/<model id>` and aliases) → credential + model
- openai_wire.py, anthropic_wire.py — parse requests, encode replies and errors (OpenAI's
  request parsing in openai_requests.py; `WireError`, shared by both, in errors.py)
- streams.py — the lean streaming path shared with `/api/completions` (coalesced writes)
- views.py — async views: authenticate (cached), resolve, call the gate, answer
"""
