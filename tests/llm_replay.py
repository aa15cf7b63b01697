"""A local HTTP server that answers as the OpenAI and Anthropic APIs do, from a script.

The real SDKs talk to it over HTTP (their `base_url` pointed at http://127.0.0.1:<port>), so
the tests exercise the SDKs' own request building, retries, timeouts and response parsing, and
the project's code is not patched. The bodies follow the APIs' documented wire formats
(POST /v1/chat/completions, POST /v1/messages). Every request is recorded, so a test can read
what a prompt held.
"""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # a dict (sent as JSON) or a str
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False  # never answer (until the server stops): a timeout


def openai_answer(content: str | None, refusal: str | None = None, tokens: int = 150) -> Reply:
    return Reply(200, {
        "id": "chatcmpl-replay", "object": "chat.completion", "created": 1764230400, "model": "gpt-4o-mini",
        "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                     "message": {"role": "assistant", "content": content, "refusal": refusal}}],
        "usage": {"prompt_tokens": tokens - 50, "completion_tokens": 50, "total_tokens": tokens},
    })


def anthropic_answer(text: str, stop_reason: str = "end_turn") -> Reply:
    return Reply(200, {
        "id": "msg_replay", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
        "content": [{"type": "text", "text": text}], "stop_reason": stop_reason, "stop_sequence": None,
        "usage": {"input_tokens": 100, "output_tokens": 50},
    })


def error(status: int, kind: str, message: str) -> Reply:
    # retry-after-ms keeps the SDKs' back-off short in tests; they honour it as the server's wish
    return Reply(status, {"type": "error", "error": {"type": kind, "message": message}},
                 {"retry-after-ms": "5", "x-should-retry": "true"})


class ReplayServer:
    def __init__(self, script: list[Reply]) -> None:
        self.script = list(script)
        self.requests: list[dict[str, Any]] = []
        self.release = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length).decode()
                server.requests.append({"path": self.path, "headers": dict(self.headers), "body": raw})
                reply = server.script.pop(0) if server.script else error(500, "api_error", "script exhausted")
                if reply.hang:
                    server.release.wait(60)
                    return
                data = reply.body if isinstance(reply.body, str) else json.dumps(reply.body)
                self.send_response(reply.status)
                self.send_header("content-type", "application/json")
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.send_header("content-length", str(len(data.encode())))
                self.end_headers()
                self.wfile.write(data.encode())

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> "ReplayServer":
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def prompts(self) -> list[str]:
        return [r["body"] for r in self.requests]
