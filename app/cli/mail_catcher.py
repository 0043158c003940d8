"""A local SMTP catcher for `reckon dev`: an aiosmtpd server that keeps the mails it receives
in memory, and a small page listing them (with each mail's text and attachments).

    python -m app.cli.mail_catcher --smtp-port 1025 --http-port 8025

Nothing leaves the machine. Tests use MailCatcher/SmtpCatcher as a real SMTP server on
loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import socket
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from jinja2 import Environment, FileSystemLoader, select_autoescape
from litestar import Litestar, Response, get
from litestar.contrib.jinja import JinjaTemplateEngine
from litestar.exceptions import NotFoundException
from litestar.response import Template
from litestar.template.config import TemplateConfig

KEEP = 200


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    content_type: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class CaughtMail:
    number: int
    received_at: datetime
    mail_from: str
    to: tuple[str, ...]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        return message_from_bytes(self.raw, policy=policy.default)

    @property
    def subject(self) -> str:
        return str(self.message.get("Subject", ""))

    @property
    def text(self) -> str:
        body = self.message.get_body(preferencelist=("plain",))
        return str(body.get_content()) if body is not None else ""

    @property
    def attachments(self) -> list[Attachment]:
        found = []
        for part in self.message.iter_attachments():
            payload = part.get_payload(decode=True)
            found.append(
                Attachment(
                    part.get_filename() or "attachment",
                    part.get_content_type(),
                    payload if isinstance(payload, bytes) else b"",
                )
            )
        return found


class MailCatcher:
    """aiosmtpd handler: accepts every message and keeps the last `keep` in memory."""

    def __init__(self, keep: int = KEEP) -> None:
        self._mails: deque[CaughtMail] = deque(maxlen=keep)
        self._lock = threading.Lock()
        self._count = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content = envelope.original_content or envelope.content
        raw = content if isinstance(content, bytes) else str(content).encode()
        with self._lock:
            self._count += 1
            self._mails.append(
                CaughtMail(
                    self._count,
                    datetime.now(UTC),
                    str(envelope.mail_from),
                    tuple(str(r) for r in envelope.rcpt_tos),
                    raw,
                )
            )
        return "250 Message accepted for delivery"

    def mails(self) -> list[CaughtMail]:
        """Newest first."""
        with self._lock:
            return list(reversed(self._mails))

    def get(self, number: int) -> CaughtMail | None:
        return next((m for m in self.mails() if m.number == number), None)

    async def wait_for(self, count: int, *, seconds: float = 10.0) -> list[CaughtMail]:
        deadline = asyncio.get_running_loop().time() + seconds
        while len(self.mails()) < count:
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"expected {count} mails, caught {len(self.mails())}")
            await asyncio.sleep(0.02)
        return self.mails()


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


class SmtpCatcher:
    """The SMTP side: a MailCatcher behind aiosmtpd's threaded Controller."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, keep: int = KEEP, handler: Any = None
    ) -> None:
        """`handler`: another aiosmtpd handler in place of the catcher (tests of refusals)."""
        self.catcher = MailCatcher(keep)
        self.host = host
        self.port = port or free_port(host)
        self._controller = Controller(handler or self.catcher, hostname=host, port=self.port)

    def start(self) -> SmtpCatcher:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()


TEMPLATES = Path(__file__).parent / "templates"


def catcher_app(catcher: MailCatcher) -> Litestar:
    def _mail(number: int) -> CaughtMail:
        found = catcher.get(number)
        if found is None:
            raise NotFoundException(f"No mail {number}")
        return found

    @get("/")
    async def index() -> Template:
        return Template("catcher_list.html", context={"mails": catcher.mails()})

    @get("/mail/{number:int}")
    async def show(number: int) -> Template:
        return Template("catcher_mail.html", context={"mail": _mail(number)})

    @get("/mail/{number:int}/raw", media_type="message/rfc822")
    async def raw(number: int) -> Response[bytes]:
        return Response(_mail(number).raw, media_type="message/rfc822")

    @get("/mail/{number:int}/attachments/{index:int}")
    async def attachment(number: int, index: int) -> Response[bytes]:
        found = _mail(number).attachments
        if not 0 <= index < len(found):
            raise NotFoundException("No such attachment")
        part = found[index]
        return Response(
            part.payload,
            media_type=part.content_type,
            headers={"Content-Disposition": f'attachment; filename="attachment-{index}"'},
        )

    environment = Environment(
        loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True)
    )
    return Litestar(
        route_handlers=[index, show, raw, attachment],
        template_config=TemplateConfig(engine=JinjaTemplateEngine.from_environment(environment)),
    )


def main(argv: Sequence[str] | None = None) -> int:
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m app.cli.mail_catcher", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--smtp-port", type=int, default=1025)
    parser.add_argument("--http-port", type=int, default=8025)
    args = parser.parse_args(argv)
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every command
    smtp = SmtpCatcher(args.host, args.smtp_port).start()
    print(
        f"mail catcher: SMTP on {args.host}:{args.smtp_port}, "
        f"mails at http://{args.host}:{args.http_port}/",
        flush=True,
    )
    try:
        uvicorn.run(
            catcher_app(smtp.catcher), host=args.host, port=args.http_port, log_level="warning"
        )
    finally:
        smtp.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
