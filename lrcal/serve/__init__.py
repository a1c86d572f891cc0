"""OpenAI- and Ollama-compatible model servers over real sockets (stdlib only), the base of
``lrcal sim`` and ``lrcal local``.

``protocol``: the wire protocol (requests, JSON / SSE / NDJSON bodies) and the
:class:`Backend` interface; ``responses``: writing and pacing answers on a connection;
``faults``: fault injection (the chaos hooks); ``server``: the threaded server, its request
handler and :meth:`ModelServer.serve_until_interrupted` for the CLI.
"""

from lrcal.serve.faults import HTTP_FAULT_STATUS, Fault, FaultInjector, FaultKind
from lrcal.serve.protocol import (
    Answer,
    Backend,
    ChatRequest,
    decode_data_url,
    parse_ollama_request,
    parse_openai_request,
)
from lrcal.serve.server import ModelServer

__all__ = [
    "Answer",
    "Backend",
    "ChatRequest",
    "Fault",
    "FaultInjector",
    "FaultKind",
    "HTTP_FAULT_STATUS",
    "ModelServer",
    "decode_data_url",
    "parse_ollama_request",
    "parse_openai_request",
]
