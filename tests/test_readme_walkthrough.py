"""The README's "A walk through the demo" is executed, so it can never drift from the API.

The section's ```bash blocks are parsed (shell variables, `$(curl ... | python3 -c
'...["key"]')` captures, curl's -X/-H/-d) and every curl call is replayed against the app
with the demo data `reckon seed-demo` writes, the way a reader would run them:

- each `<id>` is the id the reader has seen for the thing it names: `service_id=<id>`,
  `"branch_id":"<id>"`, `/bookings/<id>`; a list's first item, an object's own id;
- the README's dates are moved by whole weeks so that the booking falls in the coming week
  (same weekday, so the same working hours apply);
- at the end of the block that places the booking, the reader opens its `checkout_url`
  and presses **Pay** on the sandbox page, as the prose says.

Every API call must answer 2xx, and the walk must show each step the README promises: the
booking `pending_payment` with a checkout URL, `confirmed` after paying, the capture in the
ledger accounts, a balanced trial balance, and the booking's numbered invoice.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.cli.demo import seed_demo
from app.money import format_minor
from app.settings import Settings

Client = AsyncTestClient[Litestar]
README = Path(__file__).resolve().parents[1] / "README.md"
SECTION = "## A walk through the demo"
DATE = re.compile(r"(?<![\d-])(\d{4}-\d{2}-\d{2})(?![\d-])")
VARIABLE = re.compile(r"\$(\w+)|\$\{(\w+)\}")
PLACEHOLDER = re.compile(r"<(\w+)>")
CAPTURE = re.compile(r"^(\w+)=\$\(curl$")
FORM = re.compile(
    r'<form[^>]*method="post"[^>]*action="(?P<action>[^"]+)"[^>]*>\s*'
    r"<button[^>]*>(?P<label>[^<]+)</button>",
    re.IGNORECASE,
)


@dataclass
class Call:
    method: str
    url: str
    headers: dict[str, str]
    data: str | None
    capture: tuple[str, str] | None = None
    """(shell variable, JSON key) when the README keeps a value of the answer."""


@dataclass
class Reader:
    """What a reader running the walk-through knows: shell variables, ids seen so far."""

    client: Client
    shift: timedelta
    variables: dict[str, str] = field(default_factory=dict)
    known: dict[str, str] = field(default_factory=dict)
    answers: dict[tuple[str, str], Any] = field(default_factory=dict)


def walkthrough_blocks(readme: str) -> list[str]:
    start = readme.find(SECTION)
    assert start >= 0, f"README has no {SECTION!r} section"
    end = readme.find("\n## ", start + len(SECTION))
    section = readme[start : end if end >= 0 else None]
    blocks = re.findall(r"```bash\n(.*?)```", section, re.DOTALL)
    assert blocks, "the walk-through has no bash block"
    return blocks


def shell_commands(block: str) -> list[list[str]]:
    """The block's commands as words: line continuations joined, quotes may span lines,
    comments dropped."""
    commands: list[list[str]] = []
    pending = ""
    for line in block.replace("\\\n", " ").splitlines():
        pending = f"{pending}\n{line}" if pending else line
        try:
            words = shlex.split(pending, comments=True)
        except ValueError:  # a quote still open: the command goes on
            continue
        if words:
            commands.append(words)
        pending = ""
    assert not pending, f"unterminated command in the README: {pending!r}"
    return commands


def parse(words: list[str]) -> Call | tuple[str, str]:
    """A curl call, or a plain `NAME=value` assignment."""
    capture = None
    captured = CAPTURE.match(words[0])
    if captured is not None:
        name = captured[1]
        pipe = words.index("|")
        key = re.search(r'\["(\w+)"\]', " ".join(words[pipe:]))
        assert key is not None, f"cannot tell what {name} keeps: {words}"
        capture = (name, key[1])
        words = ["curl", *words[1:pipe]]
    elif len(words) == 1 and "=" in words[0]:
        name, value = words[0].split("=", 1)
        return name, value
    assert words[0] == "curl", f"the walk-through runs only curl: {words}"
    method, url, headers, data = None, None, {}, None
    args = iter(words[1:])
    for arg in args:
        if arg in ("-s", "--silent"):
            continue
        if arg.startswith("-X"):
            method = arg[2:] or next(args)
        elif arg in ("-H", "--header"):
            name, value = next(args).split(":", 1)
            headers[name.strip()] = value.strip()
        elif arg in ("-d", "--data", "--data-raw"):
            data = next(args)
        elif arg.startswith("-"):
            pytest.fail(f"curl option {arg} is not understood by this test: {words}")
        else:
            url = arg
    assert url is not None, f"curl without a URL: {words}"
    return Call(method or ("POST" if data is not None else "GET"), url, headers, data, capture)


def singular(word: str) -> str:
    for plural, single in (("ches", "ch"), ("ies", "y"), ("s", "")):
        if word.endswith(plural):
            return word[: -len(plural)] + single
    return word


def fill(reader: Reader, text: str, *, dates: bool = True) -> str:
    """Shell variables expanded, `<id>`s named by what precedes them, dates moved."""
    text = VARIABLE.sub(lambda m: reader.variables[m[1] or m[2]], text)

    def placeholder(match: re.Match[str]) -> str:
        before = text[: match.start()]
        name = match[1]
        if name == "id":
            named = re.search(r'(\w+)=$|"(\w+)"\s*:\s*"$|/(\w+)/$', before)
            assert named is not None, f"cannot tell which id {before[-40:]!r}<id> means"
            name = named[1] or named[2] or f"{singular(named[3])}_id"
        assert name in reader.known, f"the README uses {name} before showing where it comes from"
        return reader.known[name]

    text = PLACEHOLDER.sub(placeholder, text)
    if not dates:
        return text
    return DATE.sub(lambda m: (date.fromisoformat(m[1]) + reader.shift).isoformat(), text)


def remember(reader: Reader, path: str, body: Any) -> None:
    """A reader takes the first item of a list, or the object itself, as "the" <thing>."""
    segments = [s for s in path.split("?")[0].split("/") if s]
    collections = [s for s in segments if not re.fullmatch(r"[0-9a-f-]{36}", s)]
    thing = singular(collections[-1]).replace("-", "_")
    first = body[0] if isinstance(body, list) and body else body
    if isinstance(first, dict) and "id" in first:
        reader.known[f"{thing}_id"] = str(first["id"])
    if isinstance(body, dict) and isinstance(body.get("payment"), dict):
        payment = body["payment"]
        reader.known["payment_id"] = str(payment["id"])
        if payment.get("checkout_url"):
            reader.known["checkout_url"] = payment["checkout_url"]


async def replay(reader: Reader, call: Call) -> None:
    url = fill(reader, call.url)
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == "http://127.0.0.1:8000", url
    path = f"{parts.path}?{parts.query}" if parts.query else parts.path
    # Headers keep their text: a bearer token may happen to contain a date-like run.
    headers = {name: fill(reader, value, dates=False) for name, value in call.headers.items()}
    content = fill(reader, call.data).encode() if call.data is not None else None
    if content is not None and not any(h.lower() == "content-type" for h in headers):
        headers["Content-Type"] = "application/x-www-form-urlencoded"  # what curl -d sends
    response = await reader.client.request(call.method, path, headers=headers, content=content)
    assert 200 <= response.status_code < 300, (call.method, path, response.text)
    body = response.json()
    key = (call.method, re.sub(r"[0-9a-f-]{36}", "{id}", parts.path))
    reader.answers[key] = body
    remember(reader, parts.path, body)
    if call.capture is not None:
        reader.variables[call.capture[0]] = str(body[call.capture[1]])


def week_shift(commands: list[Call | tuple[str, str]], today: date) -> timedelta:
    """Whole weeks that move the README's booking date into the coming week."""
    booking = next(
        (
            c
            for c in commands
            if isinstance(c, Call) and c.method == "POST" and "/bookings" in c.url
        ),
        None,
    )
    assert booking is not None and booking.data is not None, "the walk-through books nothing"
    found = DATE.search(booking.data)
    assert found is not None, "the booking in the README has no start date"
    written = date.fromisoformat(found[1])
    weeks = (today + timedelta(days=2) - written).days // 7 + 1
    return timedelta(weeks=weeks)


async def pay_on_the_sandbox_page(reader: Reader) -> str:
    """Open checkout_url and press Pay, as a customer would; the page's text after paying."""
    assert "checkout_url" in reader.known, "the booking answered without a checkout_url"
    page_path = urlsplit(reader.known["checkout_url"]).path
    page = await reader.client.get(page_path)
    assert page.status_code == 200, page.text
    forms = {m["label"].strip(): m["action"] for m in FORM.finditer(page.text)}
    assert "Pay" in forms, page.text
    paid = await reader.client.post(forms["Pay"], follow_redirects=False)
    assert paid.status_code == 303, paid.text
    after = await reader.client.get(page_path)
    assert after.status_code == 200
    return page.text + after.text


async def walk(client: Client, settings: Settings, readme: str) -> Reader:
    blocks = [[parse(words) for words in shell_commands(b)] for b in walkthrough_blocks(readme)]
    today = datetime.now(UTC).date()
    reader = Reader(client, week_shift([c for block in blocks for c in block], today))
    await seed_demo(settings)
    paid = False
    for block in blocks:
        for command in block:
            if isinstance(command, tuple):
                reader.variables[command[0]] = command[1]
            else:
                await replay(reader, command)
        if "checkout_url" in reader.known and not paid:
            reader.answers[("PAY", "page")] = await pay_on_the_sandbox_page(reader)
            paid = True
    return reader


def answer(reader: Reader, method: str, path: str, promise: str) -> Any:
    assert (method, path) in reader.answers, f"the walk-through no longer shows {promise}"
    return reader.answers[(method, path)]


async def booking_postings(
    owner_engine: AsyncEngine, booking_id: str
) -> dict[tuple[str, str], int]:
    """What the ledger holds for one booking, by account (the demo's 90 days of history sit
    in the same accounts, so the walk-through's own booking is read on its own)."""
    async with owner_engine.connect() as connection:
        rows = await connection.execute(
            text(
                "SELECT a.code, p.currency, sum(p.amount_minor) AS total FROM postings p"
                " JOIN journal_entries e ON e.tenant_id = p.tenant_id AND e.id = p.entry_id"
                " JOIN ledger_accounts a ON a.tenant_id = p.tenant_id AND a.id = p.account_id"
                " WHERE e.booking_id = :booking GROUP BY a.code, p.currency"
            ),
            {"booking": booking_id},
        )
        return {(row.code, row.currency): int(row.total) for row in rows}


async def test_readme_walkthrough_runs_against_the_demo_data(
    client: Client, settings: Settings, owner_engine: AsyncEngine
) -> None:
    readme = README.read_text(encoding="utf-8")
    reader = await walk(client, settings, readme)

    assert answer(reader, "GET", "/api/v1/services", "the salon's services")
    booking = answer(reader, "POST", "/api/v1/bookings", "placing a booking")
    assert booking["status"] == "pending_payment"
    assert booking["payment"]["provider"] == "sandbox" and booking["payment"]["checkout_url"]
    start = datetime.fromisoformat(booking["start"])
    slots = answer(reader, "GET", "/api/v1/availability", "the availability")["slots"]
    assert any(datetime.fromisoformat(s["start"]) == start for s in slots), (
        "the README books a time its own availability call does not offer"
    )
    total = booking["total"]
    page = answer(reader, "PAY", "page", "paying on the sandbox page")
    shown = f"{format_minor(total['amount_minor'], total['currency'])} {total['currency']}"
    assert shown in page  # money with its currency, e.g. "350.00 EGP"
    assert "succeeded" in page

    after = answer(reader, "GET", "/api/v1/bookings/{id}", "the booking after paying")
    assert (after["id"], after["status"]) == (booking["id"], "confirmed")
    accounts = {
        (a["code"], a["currency"]): a["balance_minor"]
        for a in answer(reader, "GET", "/api/v1/ledger/accounts", "the ledger accounts")
    }
    currency = total["currency"]
    assert accounts[("clearing:sandbox", currency)] >= total["amount_minor"]
    own = await booking_postings(owner_engine, booking["id"])
    assert own[("clearing:sandbox", currency)] == total["amount_minor"]
    assert own[("receivable:customer", currency)] == 0
    assert own[("deferred_revenue", currency)] == -total["amount_minor"]
    trial = answer(reader, "GET", "/api/v1/ledger/trial-balance", "the trial balance")
    assert trial and all(row["balanced"] for row in trial)
    assert any(r["currency"] == currency and r["debits_minor"] > 0 for r in trial)
    invoices = answer(reader, "GET", "/api/v1/invoices", "the invoice list")
    [issued] = [i for i in invoices if i["booking_id"] == booking["id"]]
    assert issued["number"].startswith("INV-") and issued["total"] == total


def test_the_walkthrough_parser_reads_what_a_shell_would() -> None:
    """The parser itself: captures, multi-line quoted bodies, comments, placeholders."""
    block = (
        "B=http://127.0.0.1:8000\n"
        "T=$(curl -s -XPOST $B/api/v1/auth/token \\\n"
        '  -d \'{"email":"a@b.c"}\' | python3 -c \'import sys,json;'
        'print(json.load(sys.stdin)["access_token"])\')\n'
        'curl -s "$B/x?service_id=<id>" -H "Authorization: Bearer $T"   # a comment\n'
        'curl -s -X POST $B/api/v1/bookings -d \'{"a":\n  "<id>"}\'\n'
    )
    commands = [parse(words) for words in shell_commands(block)]
    assert commands[0] == ("B", "http://127.0.0.1:8000")
    token = commands[1]
    assert isinstance(token, Call) and token.capture == ("T", "access_token")
    assert (token.method, token.url, token.data) == (
        "POST",
        "$B/api/v1/auth/token",
        '{"email":"a@b.c"}',
    )
    listing = commands[2]
    assert isinstance(listing, Call) and listing.method == "GET"
    assert listing.headers == {"Authorization": "Bearer $T"}
    booking = commands[3]
    assert isinstance(booking, Call) and booking.data == '{"a":\n  "<id>"}'
    reader = Reader(
        client=None,  # type: ignore[arg-type]
        shift=timedelta(weeks=1),
        variables={"B": "http://h", "T": "tok"},
        known={"service_id": "S", "booking_id": "K"},
    )
    assert fill(reader, "$B/a?service_id=<id>&from=2026-12-01") == (
        "http://h/a?service_id=S&from=2026-12-08"
    )
    assert fill(reader, '{"service_id":"<id>"}') == '{"service_id":"S"}'
    assert fill(reader, "/api/v1/bookings/<id>") == "/api/v1/bookings/K"
    with pytest.raises(AssertionError, match="branch_id"):
        fill(reader, '{"branch_id":"<id>"}')
