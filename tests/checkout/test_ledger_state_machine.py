"""A hypothesis state machine drives random sequences of bookings, payments, partial refunds,
refund outcomes, cancellations, completions and no-shows through the real use cases, and after
every step checks the books: the trial balance is zero per currency, no payable is negative,
refunds never exceed captures, and the revenue report equals the ledger sums exactly."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.audit import trail as audit
from app.bookings import checkout, lifecycle
from app.bookings.errors import SlotUnavailable
from app.bookings.placing import place_booking
from app.bookings.rules import BookingRequest, Customer
from app.catalog import offerings
from app.catalog import service as catalog
from app.catalog.specs import ServiceSpec, TierInput, WeeklyInput
from app.db import create_engine, session_factory
from app.errors import DomainError
from app.ledger.reports import revenue_report
from app.money import Money
from app.settings import Settings
from app.tenancy.service import sign_up

BASE = datetime(2031, 3, 3, 6, 0, tzinfo=UTC)  # a Monday; Cairo is UTC+2/+3
PRICES = (9_999, 15_000, 20_001)


class World:
    """One tenant's catalog and a private event loop with its own engines."""

    def __init__(self, settings: Settings) -> None:
        self.loop = asyncio.new_event_loop()
        self.app = create_engine(settings.runtime_database_url, pool_size=2, max_overflow=2)
        self.owner = create_engine(settings.database_url, pool_size=1, max_overflow=1)
        self.sessions = session_factory(self.app)
        self.tenant_id: uuid.UUID = uuid.uuid4()
        self.services: list[tuple[uuid.UUID, uuid.UUID]] = []  # (service, resource)
        self.branch_id: uuid.UUID = uuid.uuid4()

    def fresh_tenant(self) -> None:
        """Each example starts from a new business, so a failure replays exactly."""
        self.services = []
        self.run(self._setup())

    def run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    async def _setup(self) -> None:
        async with self.sessions() as s:
            owner = await sign_up(
                s,
                business_name="Books",
                slug=f"b-{uuid.uuid4().hex[:12]}",
                email="o@example.com",
                password="long enough pw",
                currency="EGP",
                timezone="Africa/Cairo",
            )
        self.tenant_id = owner.tenant_id
        async with self.sessions() as s:
            self.branch_id = (
                await catalog.create_branch(s, owner, name="B", timezone="Africa/Cairo")
            ).id
        for index, price in enumerate(PRICES):
            async with self.sessions() as s:
                resource = await catalog.create_resource(
                    s,
                    owner,
                    name=f"R{index}",
                    kind="staff",
                    capacity=1,
                    branch_ids=[self.branch_id],
                    commission_bps=1_234 * (index + 1),
                )
            weekly = [WeeklyInput(d, "00:00", "23:59", self.branch_id) for d in range(7)]
            async with self.sessions() as s:
                await catalog.set_schedule(s, owner, resource.id, weekly=weekly, overrides=[])
            async with self.sessions() as s:
                service = await offerings.create_service(
                    s,
                    owner,
                    ServiceSpec(
                        name=f"S{index}",
                        policy="time_slot",
                        price_minor=price,
                        currency="EGP",
                        pricing="fixed",
                        resource_ids=(resource.id,),
                        duration_minutes=60,
                        slot_step_minutes=60,
                        tiers=(TierInput(48, 10_000), TierInput(12, 3_333)),
                        no_show_fee_bps=7_777 if index else None,
                    ),
                )
            self.services.append((service.id, resource.id))

    def close(self) -> None:
        self.run(self.app.dispose())
        self.run(self.owner.dispose())
        self.loop.close()


async def _scalar(owner: AsyncEngine, sql: str, **params: Any) -> Any:
    async with owner.connect() as connection:
        return await connection.scalar(text(sql), params)


class Books(RuleBasedStateMachine):
    world: World
    bookings = Bundle("bookings")

    def __init__(self) -> None:
        super().__init__()
        self.clock = BASE
        self.world.fresh_tenant()

    def tick(self) -> datetime:
        self.clock += timedelta(minutes=1)
        return self.clock

    async def _call(self, use_case: Any, *args: Any, **kwargs: Any) -> Any:
        async with self.world.sessions() as session:
            return await use_case(session, self.world.tenant_id, *args, **kwargs)

    def call(self, use_case: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return self.world.run(self._call(use_case, *args, **kwargs))
        except DomainError:
            return None  # an illegal move for the current state: refused, nothing changes

    @rule(
        target=bookings,
        service=st.integers(0, 2),
        day=st.integers(1, 6),
        hour=st.integers(8, 20),
        cash=st.booleans(),
    )
    def place(self, service: int, day: int, hour: int, cash: bool) -> Any:
        service_id, resource_id = self.world.services[service]
        start = BASE.replace(hour=0) + timedelta(days=day, hours=hour)
        request = BookingRequest(
            service_id=service_id,
            branch_id=self.world.branch_id,
            start=start,
            customer=Customer("C"),
            provider="cash" if cash else "sandbox",
            resource_id=resource_id,
        )
        try:
            placed = self.world.run(self._call(place_booking, audit.PUBLIC, request, self.tick()))
        except SlotUnavailable:
            return None
        return (placed.booking.id, placed.payments[0].id, placed.booking.start)

    @rule(booking=bookings)
    def pay(self, booking: Any) -> None:
        if booking is None:
            return
        payment = self.call(checkout.get_payment, booking[1])
        if payment is not None:
            self.call(
                checkout.record_payment_succeeded,
                booking[1],
                amount=payment.amount,
                fee_minor=payment.amount.amount_minor // 37,
                provider_ref="sandbox",
                now=self.tick(),
            )

    @rule(booking=bookings, amount=st.one_of(st.none(), st.integers(1, 12_000)))
    def refund(self, booking: Any, amount: int | None) -> None:
        if booking is not None:
            self.call(
                checkout.refund_booking,
                audit.SYSTEM,
                booking[0],
                amount_minor=amount,
                reason="test",
                now=self.tick(),
            )

    @rule(succeed=st.booleans())
    def finish_refunds(self, succeed: bool) -> None:
        ids = self.world.run(
            _ids(
                self.world.owner,
                "SELECT id FROM refunds WHERE status = 'pending' AND tenant_id = :t",
                t=self.world.tenant_id,
            )
        )
        for refund_id in ids:
            self.call(
                checkout.record_refund_result,
                refund_id,
                succeeded=succeed,
                provider_ref="r",
                reason=None,
                now=self.tick(),
            )

    @rule(booking=bookings, hours_before=st.sampled_from([100, 30, 5]))
    def cancel(self, booking: Any, hours_before: int) -> None:
        if booking is not None:
            self.call(
                lifecycle.cancel_booking,
                audit.SYSTEM,
                booking[0],
                booking[2] - timedelta(hours=hours_before),
            )

    @rule(booking=bookings)
    def visit(self, booking: Any) -> None:
        if booking is not None:
            self.call(lifecycle.check_in_booking, audit.SYSTEM, booking[0], booking[2])
            self.call(
                lifecycle.complete_booking,
                audit.SYSTEM,
                booking[0],
                booking[2] + timedelta(hours=1),
            )

    @rule(booking=bookings)
    def no_show(self, booking: Any) -> None:
        if booking is not None:
            self.call(
                lifecycle.mark_no_show, audit.SYSTEM, booking[0], booking[2] + timedelta(hours=2)
            )

    @invariant()
    def books_hold(self) -> None:
        self.world.run(check_books(self.world))


async def _ids(owner: AsyncEngine, sql: str, **params: Any) -> list[uuid.UUID]:
    async with owner.connect() as connection:
        return list((await connection.execute(text(sql), params)).scalars())


async def check_books(world: World) -> None:
    owner, tenant = world.owner, world.tenant_id
    unbalanced = await _scalar(
        owner,
        "SELECT count(*) FROM (SELECT currency FROM postings "
        "WHERE tenant_id = :t GROUP BY currency "
        "HAVING sum(amount_minor) <> 0) x",
        t=tenant,
    )
    assert unbalanced == 0
    negative_payables = await _scalar(
        owner,
        (
            "SELECT count(*) FROM (SELECT a.id FROM ledger_accounts a JOIN postings p "
            "ON p.tenant_id = a.tenant_id AND p.account_id = a.id WHERE a.tenant_id = :t "
            "AND a.code LIKE 'payable:%' GROUP BY a.id HAVING sum(p.amount_minor) > 0) x"
        ),
        t=tenant,
    )
    assert negative_payables == 0
    over_refunded = await _scalar(
        owner,
        (
            "SELECT count(*) FROM payments p WHERE p.tenant_id = :t AND p.captured_minor < "
            "(SELECT coalesce(sum(r.amount_minor), 0) FROM refunds r "
            "WHERE r.tenant_id = p.tenant_id AND r.payment_id = p.id AND r.status <> 'failed')"
        ),
        t=tenant,
    )
    assert over_refunded == 0
    async with world.sessions() as session:
        report = await revenue_report(
            session,
            tenant,
            start=BASE.date() - timedelta(days=2),
            end=BASE.date() + timedelta(days=30),
            group_by="month",
        )
    gross = sum(r.gross_minor for r in report.totals)
    refunds = sum(r.refunds_minor for r in report.totals)
    commissions = sum(r.commissions_minor for r in report.totals)
    revenue_balance = -int(
        await _scalar(
            owner,
            (
                "SELECT coalesce(sum(p.amount_minor), 0) FROM postings p JOIN ledger_accounts a "
                "ON a.tenant_id = p.tenant_id AND a.id = p.account_id WHERE a.tenant_id = :t "
                "AND a.code LIKE 'revenue%'"
            ),
            t=tenant,
        )
    )
    refunds_from_revenue = int(
        await _scalar(
            owner,
            (
                "SELECT coalesce(sum(p.amount_minor), 0) FROM postings p JOIN ledger_accounts a "
                "ON a.tenant_id = p.tenant_id AND a.id = p.account_id JOIN journal_entries e "
                "ON e.tenant_id = p.tenant_id AND e.id = p.entry_id WHERE a.tenant_id = :t "
                "AND a.code LIKE 'revenue%' AND (e.reason = 'refund' OR e.reverses_entry_id IN "
                "(SELECT id FROM journal_entries WHERE reason = 'refund'))"
            ),
            t=tenant,
        )
    )
    commission_balance = int(
        await _scalar(
            owner,
            (
                "SELECT coalesce(sum(p.amount_minor), 0) FROM postings p JOIN ledger_accounts a "
                "ON a.tenant_id = p.tenant_id AND a.id = p.account_id WHERE a.tenant_id = :t "
                "AND a.code = 'expense:commission'"
            ),
            t=tenant,
        )
    )
    assert gross - refunds_from_revenue == revenue_balance
    assert refunds >= refunds_from_revenue
    assert commissions == commission_balance
    assert Money(gross, "EGP").amount_minor == gross


def test_random_money_histories_keep_the_books_right(settings: Settings) -> None:
    world = World(settings)

    class Machine(Books):
        pass

    Machine.world = world
    try:
        run_state_machine_as_test(
            Machine,
            settings=hypothesis_settings(
                max_examples=15,
                stateful_step_count=16,
                deadline=None,
                suppress_health_check=list(HealthCheck),
            ),
        )
    finally:
        world.close()
