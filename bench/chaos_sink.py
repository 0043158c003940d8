"""The chaos harness's stand-in for every provider and notification endpoint: a loopback HTTP
server that answers like the provider and records each call by its idempotency key.

The key is the request's Idempotency-Key header (Stripe, Kashier); a WhatsApp message has
none (Meta offers no idempotency key), so its recipient, template and parameters stand in: the
same message sent twice is two messages on the customer's phone. Like the providers, the sink
applies a request with an Idempotency-Key once: a retry under the same key is a replay, answered
as before and no new effect (Stripe's documented behaviour). A message without one called
more than once is a duplicate effect."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A worker SIGKILLed mid-request resets its connection: expected here."""


class Sink:
    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.keyed: set[str] = set()  # keys that came as an Idempotency-Key header
        self.paths: Counter[str] = Counter()
        # What each unkeyed effect was and when it came (for naming a duplicate to on-call).
        self.seen: dict[str, list[str]] = {}
        self._lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                if len(body) < length:
                    # The sender died mid-request (a worker SIGKILLed while writing): like any
                    # HTTP server, the provider never acts on a request whose body did not
                    # arrive, so it is no call at all.
                    self.close_connection = True
                    return
                header = self.headers.get("idempotency-key")
                key = header or _message_key(body)
                sink.record(self.path, key, keyed=header is not None)
                if header is None:
                    sink.note(key, _describe(body))
                answer = json.dumps(_answer(self.path, key)).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            do_PUT = do_POST
            do_PATCH = do_POST

            def log_message(self, *_: Any) -> None:
                pass

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def record(self, path: str, key: str, *, keyed: bool = False) -> None:
        with self._lock:
            self.calls[key] += 1
            if keyed:
                self.keyed.add(key)
            self.paths[path.split("?", 1)[0].rsplit("/", 1)[-1]] += 1

    def note(self, key: str, about: str) -> None:
        with self._lock:
            self.seen.setdefault(key, []).append(f"{time.strftime('%H:%M:%S')} {about}")

    @property
    def duplicates(self) -> dict[str, int]:
        """Effects applied more than once: messages sent again (an idempotency key's replays
        are answered from the provider's memory and change nothing)."""
        return {
            key: count for key, count in self.calls.items() if count > 1 and key not in self.keyed
        }

    @property
    def replays(self) -> int:
        return sum(self.calls[key] - 1 for key in self.keyed)


def _message_key(body: bytes) -> str:
    try:
        message = json.loads(body or b"{}")
    except ValueError:
        message = {"raw": body.decode("latin-1")}
    if isinstance(message, dict) and "template" in message:
        stable = {"to": message.get("to"), "template": message.get("template")}
    else:
        stable = message
    return "body:" + hashlib.sha256(json.dumps(stable, sort_keys=True).encode()).hexdigest()[:24]


def _describe(body: bytes) -> str:
    """Recipient, template and parameters of a WhatsApp message, for the report."""
    try:
        message = json.loads(body or b"{}")
        template = message["template"]
        values = [p["text"] for c in template.get("components", []) for p in c["parameters"]]
        return f"to {message['to']} {template['name']} {values}"
    except (ValueError, KeyError, TypeError):
        return body[:120].decode("latin-1")


def _answer(path: str, key: str) -> dict[str, Any]:
    if path.endswith("/messages"):  # WhatsApp Cloud API
        return {
            "messaging_product": "whatsapp",
            "contacts": [{"input": "", "wa_id": ""}],
            "messages": [{"id": f"wamid.{key[-24:]}"}],
        }
    return {"id": key, "status": "succeeded"}
