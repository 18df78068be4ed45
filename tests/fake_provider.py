"""A model provider on loopback for the AI-step tests: real HTTP, scripted answers.

``FakeProvider(answer)`` listens on 127.0.0.1 (a free port) in a daemon thread and records
every request. ``answer(request)`` returns ``(status, json_body, headers)``; by default each
request gets :attr:`FakeProvider.reply` with status 200.
"""

from __future__ import annotations

import dataclasses
import http.server
import json
import threading
import typing
import urllib.parse


@dataclasses.dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: typing.Any


Answer = typing.Callable[[Recorded], tuple[int, typing.Any, dict[str, str]]]

DEFAULT_REPLY = {"id": "chatcmpl-1", "choices": [{"message": {"role": "assistant",
                                                              "content": "hi"}}]}


class FakeProvider:
    def __init__(self, answer: Answer | None = None) -> None:
        self.answer = answer
        self.reply: typing.Any = DEFAULT_REPLY
        self.requests: list[Recorded] = []
        provider = self

        class Handler(http.server.BaseHTTPRequestHandler):
            timeout = 10  # a stuck client cannot hold the thread for long

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length)
                parts = urllib.parse.urlsplit(self.path)
                rec = Recorded("POST", parts.path, urllib.parse.parse_qs(parts.query),
                               {k.lower(): v for k, v in self.headers.items()},
                               json.loads(raw) if raw else None)
                provider.requests.append(rec)
                if provider.answer is not None:
                    status, body, headers = provider.answer(rec)
                else:
                    status, body, headers = 200, provider.reply, {}
                data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: typing.Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> typing.Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)
