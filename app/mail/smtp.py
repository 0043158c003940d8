"""Sending one message over SMTP: the standard library's smtplib in a worker thread, so the
event loop never blocks. Failures are sorted into retryable (connection trouble, 4xx) and
permanent (5xx: a refused recipient, a rejected message) for the outbox relay."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage

from app.outbox.errors import PermanentError, RetryableError


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int = 25
    sender: str = "Reckon <bookings@reckon.localhost>"
    username: str = ""
    password: str = field(default="", repr=False)
    starttls: bool = False
    timeout: float = 15.0


def _send_now(config: SmtpConfig, message: EmailMessage) -> None:
    with smtplib.SMTP(config.host, config.port, timeout=config.timeout) as client:
        client.ehlo()
        if config.starttls:
            client.starttls(context=ssl.create_default_context())
            client.ehlo()
        if config.username:
            client.login(config.username, config.password)
        client.send_message(message)


async def send(config: SmtpConfig, message: EmailMessage) -> None:
    try:
        await asyncio.to_thread(_send_now, config, message)
    except smtplib.SMTPRecipientsRefused as error:
        codes = [code for code, _ in error.recipients.values()]
        if all(code >= 500 for code in codes):
            raise PermanentError(f"recipient refused: {codes}") from error
        raise RetryableError(f"recipient deferred: {codes}") from error
    except smtplib.SMTPResponseException as error:
        if error.smtp_code >= 500:
            raise PermanentError(f"smtp {error.smtp_code}: {error.smtp_error!r}") from error
        raise RetryableError(f"smtp {error.smtp_code}: {error.smtp_error!r}") from error
    except (smtplib.SMTPException, OSError) as error:
        raise RetryableError(f"smtp unreachable: {type(error).__name__}: {error}") from error
