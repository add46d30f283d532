"""A local HTTP server that answers like OpenAI's and Anthropic's APIs, for the real
SDKs to talk to: chat completions, the Responses API, embeddings and messages, as
JSON or as event streams, and whatever errors a test scripts.

    with FakeProvider() as provider:
        BYOK["BASE_URLS"] = {"openai": provider.openai_url, "anthropic": provider.url}
        provider.answer("/v1/chat/completions", status=429)   # the next answer, once
        ...
        provider.requests[-1].json                            # what the SDK sent

Answers report fixed usage (:data:`USAGE`) and echo the requested model, so tests
can compute what a call costs.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import socket
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

#: The token counts every default answer reports, per API.
USAGE = {
    "chat": {"prompt_tokens": 1200, "completion_tokens": 300, "cached_tokens": 200},
    "responses": {"input_tokens": 900, "output_tokens": 150, "cached_tokens": 100},
    "embeddings": {"prompt_tokens": 64},
    "messages": {
        "input_tokens": 1000,
        "cache_read_input_tokens": 4000,
        "cache_creation_input_tokens": 2000,
        "output_tokens": 500,
    },
}


@dataclass
class Received:
    """A request the server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class Answer:
    """A scripted answer: a status and a JSON body, or a list of events to stream."""

    status: int = 200
    json: Any = None
    events: list[tuple[str | None, Any]] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    #: Seconds to wait before answering (to make a client time out).
    delay: float = 0
    #: Gzip the body (a JSON answer).
    gzip: bool = False


def chat_completion(model: str) -> dict[str, Any]:
    usage = USAGE["chat"]
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello!", "refusal": None},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": usage["prompt_tokens"],
            "completion_tokens": usage["completion_tokens"],
            "total_tokens": usage["prompt_tokens"] + usage["completion_tokens"],
            "prompt_tokens_details": {"cached_tokens": usage["cached_tokens"]},
        },
    }


def chat_chunks(model: str, *, include_usage: bool) -> list[tuple[str | None, Any]]:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": 1_700_000_000,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **({"usage": None} if include_usage else {}),
        }

    events: list[tuple[str | None, Any]] = [
        (None, chunk({"role": "assistant", "content": ""})),
        *((None, chunk({"content": word})) for word in ("Hel", "lo", "!")),
        (None, chunk({}, "stop")),
    ]
    if include_usage:
        usage = chat_completion(model)["usage"]
        final = {**chunk({}), "choices": [], "usage": usage}
        events.append((None, final))
    events.append((None, "[DONE]"))
    return events


def response(model: str, status: str = "completed") -> dict[str, Any]:
    usage = USAGE["responses"]
    return {
        "id": "resp_1",
        "object": "response",
        "created_at": 1_700_000_000,
        "status": status,
        "model": model,
        "output": [
            {
                "type": "message",
                "id": "msg_1",
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "Hello!", "annotations": []}],
            }
        ],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": {
            "input_tokens": usage["input_tokens"],
            "input_tokens_details": {"cached_tokens": usage["cached_tokens"]},
            "output_tokens": usage["output_tokens"],
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": usage["input_tokens"] + usage["output_tokens"],
        },
    }


def response_events(model: str) -> list[tuple[str | None, Any]]:
    created = {**response(model, "in_progress"), "output": [], "usage": None}
    return [
        (
            "response.created",
            {"type": "response.created", "sequence_number": 0, "response": created},
        ),
        *(
            (
                "response.output_text.delta",
                {
                    "type": "response.output_text.delta",
                    "sequence_number": number,
                    "item_id": "msg_1",
                    "output_index": 0,
                    "content_index": 0,
                    "delta": word,
                    "logprobs": [],
                },
            )
            for number, word in enumerate(("Hel", "lo!"), start=1)
        ),
        (
            "response.completed",
            {"type": "response.completed", "sequence_number": 3, "response": response(model)},
        ),
    ]


def embeddings(model: str, count: int) -> dict[str, Any]:
    tokens = USAGE["embeddings"]["prompt_tokens"]
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": index, "embedding": [0.1, -0.2, 0.3]}
            for index in range(count)
        ],
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def message(model: str) -> dict[str, Any]:
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": "Hello!"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": dict(USAGE["messages"]),
    }


def message_events(model: str) -> list[tuple[str | None, Any]]:
    usage = USAGE["messages"]
    start = {**message(model), "content": [], "stop_reason": None}
    start["usage"] = {**usage, "output_tokens": 1}
    return [
        ("message_start", {"type": "message_start", "message": start}),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        *(
            (
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": word},
                },
            )
            for word in ("Hel", "lo!")
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": usage["output_tokens"]},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]


def error_body(status: int) -> dict[str, Any]:
    return {"error": {"message": f"Scripted error {status}.", "type": "scripted", "code": None}}


def default_answer(path: str, body: Any) -> Answer:
    """What the provider answers to ``path`` when no answer is scripted."""
    body = body if isinstance(body, dict) else {}
    model = body.get("model", "unknown-model")
    stream = body.get("stream") is True
    if path.endswith("/chat/completions"):
        if stream:
            include = bool((body.get("stream_options") or {}).get("include_usage"))
            return Answer(events=chat_chunks(model, include_usage=include))
        return Answer(json=chat_completion(model))
    if path.endswith("/responses"):
        return Answer(events=response_events(model)) if stream else Answer(json=response(model))
    if path.endswith("/embeddings"):
        count = len(body["input"]) if isinstance(body.get("input"), list) else 1
        return Answer(json=embeddings(model, count))
    if path.endswith("/messages"):
        return Answer(events=message_events(model)) if stream else Answer(json=message(model))
    if path.endswith("/models"):
        return Answer(json={"object": "list", "data": []})
    return Answer(status=404, json=error_body(404))


class FakeProvider:
    """The server: a thread answering on 127.0.0.1, on a free port."""

    def __init__(self, *, chunk_size: int | None = None) -> None:
        #: Split streamed bodies into chunks of this many bytes (events cut anywhere).
        self.chunk_size = chunk_size
        self.requests: list[Received] = []
        self._script: dict[str, deque[Answer]] = defaultdict(deque)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        """The server's root: Anthropic's base URL."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def openai_url(self) -> str:
        return f"{self.url}/v1"

    def answer(self, path: str, **answer: Any) -> None:
        """Script the next answer to ``path`` (once; scripts queue up)."""
        with self._lock:
            self._script[path].append(Answer(**answer))

    def next_answer(self, path: str, body: Any) -> Answer:
        with self._lock:
            if self._script[path]:
                return self._script[path].popleft()
        return default_answer(path, body)

    def start(self) -> FakeProvider:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeProvider:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Answers go out at once, not after a delayed ACK (40 ms).
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet

            def handle_one_request(self) -> None:
                # Acknowledge the request's headers at once: a client that writes its
                # body apart (HTTPX2 does, with Nagle's algorithm on) waits for that.
                if hasattr(socket, "TCP_QUICKACK"):
                    with contextlib.suppress(OSError):
                        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
                super().handle_one_request()

            def do_GET(self) -> None:
                self.handle_any()

            def do_POST(self) -> None:
                self.handle_any()

            def handle_any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path = self.path.split("?", 1)[0]
                headers = {name.lower(): value for name, value in self.headers.items()}
                received = Received(self.command, path, headers, body)
                provider.requests.append(received)
                answer = provider.next_answer(path, received.json if body else None)
                if answer.delay:
                    time.sleep(answer.delay)
                if answer.events is not None:
                    self.stream(answer)
                else:
                    self.reply(answer)

            def reply(self, answer: Answer) -> None:
                payload = answer.json if answer.json is not None else error_body(answer.status)
                data = json.dumps(payload).encode()
                self.send_response(answer.status)
                self.send_header("Content-Type", "application/json")
                if answer.gzip:
                    data = gzip.compress(data)
                    self.send_header("Content-Encoding", "gzip")
                self.send_header("Content-Length", str(len(data)))
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def stream(self, answer: Answer) -> None:
                self.send_response(answer.status)
                self.send_header("Content-Type", "text/event-stream; charset=utf-8")
                self.send_header("Transfer-Encoding", "chunked")
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                for name, data in answer.events or []:
                    text = data if isinstance(data, str) else json.dumps(data)
                    event = (f"event: {name}\n" if name else "") + f"data: {text}\n\n"
                    raw = event.encode()
                    size = provider.chunk_size or len(raw)
                    for start in range(0, len(raw), size):
                        self.chunk(raw[start : start + size])
                self.chunk(b"")

            def chunk(self, data: bytes) -> None:
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

        return Handler


def refused_url() -> str:
    """A loopback URL where nothing listens: connecting to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
