"""Forms: parsing the details form into a BookingRequest, mapping the domain's field errors to
form fields, and running a form POST through the API's Idempotency-Key machinery with the
key the page rendered into a hidden input (so a double submit never books twice)."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast
from urllib.parse import urlencode

import msgspec
from litestar import Request, Response
from litestar.datastructures import FormMultiDict

from app import errors
from app.bookings.rules import PHONE, BookingRequest, Customer, LineItem
from app.edge.http import Operation, idempotent
from app.errors import ValidationFailed
from app.presentation.i18n import N_
from app.validation import check_email, check_text, field_error

# The domain's field names -> the form's.
FIELD_OF = {
    "customer.name": "name",
    "customer.email": "email",
    "customer.phone": "phone",
    "payment.provider": "payment",
    "products": "products",
    "products.quantity": "products",
}
MESSAGES = {
    "name": N_("Enter your name."),
    "email": N_("Enter a valid email address, like name@example.com."),
    "phone": N_("Enter a phone number: digits, spaces, dashes or brackets (5 to 32)."),
    "payment": N_("Choose how you want to pay."),
    "products": N_("Check the quantities of the extras you chose."),
}
IN_PROGRESS_WAIT_SECONDS = 10.0


def web_url(url: object) -> bool:
    """Only http(s) addresses are ever linked or redirected to (a provider's checkout page)."""
    return isinstance(url, str) and url.startswith(("https://", "http://"))


def new_key() -> str:
    """An Idempotency-Key made when a form is rendered."""
    return "web-" + secrets.token_urlsafe(18)


def form_errors(problems: list[dict[str, Any]]) -> dict[str, str]:
    """Field -> message msgid for the fields a ValidationFailed (or problem+json) names;
    anything else lands under "form"."""
    found: dict[str, str] = {}
    for problem in problems:
        name = FIELD_OF.get(str(problem.get("field", "")))
        if name is None:
            found.setdefault("form", N_("Some details are not valid. Check them and try again."))
        else:
            found.setdefault(name, MESSAGES[name])
    return found


@dataclass(frozen=True, slots=True)
class DetailsForm:
    service_id: uuid.UUID
    branch_id: uuid.UUID
    start: datetime
    end: datetime | None
    resource_id: uuid.UUID | None
    party_size: int
    name: str
    phone: str
    email: str
    provider: str
    key: str
    products: dict[uuid.UUID, int] = field(default_factory=dict)

    def request(self, locale: str) -> BookingRequest:
        return BookingRequest(
            service_id=self.service_id,
            branch_id=self.branch_id,
            start=self.start,
            end=self.end,
            resource_id=self.resource_id,
            party_size=self.party_size,
            customer=Customer(self.name, self.email, self.phone, locale),
            provider=self.provider,
            products=tuple(LineItem(p, q) for p, q in sorted(self.products.items()) if q > 0),
        )


def _uuid(form: FormMultiDict, name: str, *, required: bool = True) -> uuid.UUID | None:
    text = str(form.get(name) or "")
    if not text and not required:
        return None
    try:
        return uuid.UUID(text)
    except ValueError:
        raise field_error(name, "must be an id") from None


def _moment(form: FormMultiDict, name: str) -> datetime | None:
    text = str(form.get(name) or "")
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise field_error(name, "must be an RFC 3339 time") from None
    if value.tzinfo is None:
        raise field_error(name, "must include a UTC offset")
    return value


def _field_ok(name: str, text: str) -> bool:
    """Every field checked at once, with the validators place_booking applies again, so the
    customer sees all that is wrong in one go."""
    if not text:
        return False
    try:
        if name == "email":
            check_email(text, "customer.email")
        elif name == "name":
            check_text(text, "customer.name")
    except ValidationFailed:
        return False
    return name != "phone" or PHONE.match(text) is not None


def _quantity(text: str) -> int:
    try:
        return int(text or 0)
    except ValueError:
        return -1


def parse_details(
    form: FormMultiDict, products: set[uuid.UUID]
) -> tuple[DetailsForm, dict[str, str]]:
    """The form, and the fields that are missing or malformed. Hidden fields that do not parse
    mean a tampered form: ValidationFailed (a 422 page)."""
    start = _moment(form, "start")
    if start is None:
        raise field_error("start", "is required")
    try:
        party = int(str(form.get("party") or 1))
    except ValueError:
        raise field_error("party", "must be a number") from None
    chosen: dict[uuid.UUID, int] = {}
    missing: dict[str, str] = {}
    for product_id in products:
        quantity = _quantity(str(form.get(f"product-{product_id}") or ""))
        if not 0 <= quantity <= 20:
            missing["products"] = MESSAGES["products"]
        elif quantity:
            chosen[product_id] = quantity
    values = {name: str(form.get(name) or "").strip() for name in ("name", "phone", "email")}
    for name, text in values.items():
        if not _field_ok(name, text):
            missing[name] = MESSAGES[name]
    provider = str(form.get("payment") or "")
    if not provider:
        missing["payment"] = MESSAGES["payment"]
    details = DetailsForm(
        service_id=cast(uuid.UUID, _uuid(form, "service")),
        branch_id=cast(uuid.UUID, _uuid(form, "branch")),
        start=start,
        end=_moment(form, "end"),
        resource_id=_uuid(form, "who", required=False),
        party_size=party,
        name=values["name"],
        phone=values["phone"],
        email=values["email"],
        provider=provider,
        key=str(form.get("idempotency_key") or "")[:255] or new_key(),
        products=chosen,
    )
    return details, missing


class _KeyedRequest:
    """What app.edge.http.idempotent reads of a request, with the form's hidden key standing in
    for the Idempotency-Key header and the parsed fields (sorted) as the body."""

    method = "POST"

    def __init__(self, request: Request[Any, Any, Any], key: str, body: bytes) -> None:
        self.url = request.url
        self.app = request.app
        self.headers = {"idempotency-key": key}
        self._body = body

    async def body(self) -> bytes:
        return self._body


@dataclass(frozen=True, slots=True)
class Outcome:
    status: int
    body: dict[str, Any]
    replayed: bool

    @property
    def ok(self) -> bool:
        return self.status < 400

    @property
    def problem(self) -> str:
        return str(self.body.get("type", ""))


async def run_once(
    request: Request[Any, Any, Any],
    tenant_id: uuid.UUID,
    key: str,
    fields: list[tuple[str, str]],
    operation: Operation,
) -> Outcome:
    """Run `operation` once per key and fields. A duplicate that arrives while the first is
    still running waits for its stored answer instead of failing."""
    keyed = cast(
        Request[Any, Any, Any], _KeyedRequest(request, key, urlencode(sorted(fields)).encode())
    )
    deadline = asyncio.get_running_loop().time() + IN_PROGRESS_WAIT_SECONDS
    while True:
        try:
            response = await idempotent(keyed, tenant_id, operation)
            break
        except errors.IdempotencyKeyInProgress:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.2)
    return _outcome(response)


def _outcome(response: Response[bytes]) -> Outcome:
    content = response.content if isinstance(response.content, bytes) else b"{}"
    body = msgspec.json.decode(content) if content else {}
    replayed = response.headers.get("Idempotent-Replayed") == "true"
    return Outcome(response.status_code or 200, body if isinstance(body, dict) else {}, replayed)
