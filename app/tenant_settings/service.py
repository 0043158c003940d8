"""Use cases for per-tenant provider settings, and the read helper jobs use.

Secrets are sealed with the box the composition root passes in and never leave this module
in clear except through `load_provider_config`, which jobs call right before a provider call.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import trail as audit
from app.db import new_id, psycopg_sql, set_lock_timeout, set_tenant
from app.tenancy.service import Principal
from app.tenant_settings.models import (
    CREDENTIAL_FIELDS,
    DEFAULT_ENABLED,
    PROVIDERS,
    TenantProviderSetting,
    associated_data,
)
from app.tenant_settings.sealing import Sealer
from app.validation import field_error

MAX_SECRET_LENGTH = 4096


@dataclass(frozen=True, slots=True)
class ProviderState:
    provider: str
    enabled: bool
    fields_set: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ProviderSettingsView:
    providers: tuple[ProviderState, ...]

    @property
    def enabled(self) -> list[str]:
        return [p.provider for p in self.providers if p.enabled]


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    """A tenant's view of one provider inside a job: on or off, and its decrypted secrets."""

    provider: str
    enabled: bool
    credentials: Mapping[str, str] = field(default_factory=dict, repr=False)


CredentialChanges = Mapping[str, Mapping[str, str | None]]


def _check_changes(enabled: Sequence[str] | None, credentials: CredentialChanges) -> None:
    for name in enabled or ():
        if name not in PROVIDERS:
            raise field_error("enabled", f"unknown provider {name!r}")
    for provider, values in credentials.items():
        allowed = CREDENTIAL_FIELDS.get(provider)
        if allowed is None:
            raise field_error("credentials", f"unknown provider {provider!r}")
        for key, value in values.items():
            if key not in allowed:
                raise field_error(f"credentials.{provider}", f"unknown field {key!r}")
            if value is not None and not 1 <= len(value) <= MAX_SECRET_LENGTH:
                raise field_error(
                    f"credentials.{provider}.{key}", f"must be 1-{MAX_SECRET_LENGTH} characters"
                )


async def _lock_rows(
    session: AsyncSession, tenant_id: uuid.UUID, providers: Sequence[str]
) -> dict[str, TenantProviderSetting]:
    """Create missing rows, then lock them in provider order so concurrent PUTs serialise."""
    if providers:
        await session.execute(
            insert(TenantProviderSetting)
            .values(
                [
                    {
                        "tenant_id": tenant_id,
                        "id": new_id(),
                        "provider": p,
                        "enabled": p in DEFAULT_ENABLED,
                    }
                    for p in providers
                ]
            )
            .on_conflict_do_nothing(index_elements=["tenant_id", "provider"])
        )
    await set_lock_timeout(session)
    rows = await session.scalars(
        select(TenantProviderSetting)
        .where(
            TenantProviderSetting.tenant_id == tenant_id,
            TenantProviderSetting.provider.in_(providers),
        )
        .order_by(TenantProviderSetting.provider)
        .with_for_update()
    )
    return {row.provider: row for row in rows}


def _open(box: Sealer, tenant_id: uuid.UUID, row: TenantProviderSetting) -> dict[str, str]:
    if not row.sealed:
        return {}
    plain = box.decrypt(row.sealed, associated_data=associated_data(tenant_id, row.provider))
    loaded = json.loads(plain)
    return {str(k): str(v) for k, v in loaded.items()} if isinstance(loaded, dict) else {}


def _apply_credentials(
    box: Sealer,
    tenant_id: uuid.UUID,
    row: TenantProviderSetting,
    changes: Mapping[str, str | None],
) -> None:
    current = _open(box, tenant_id, row)
    for key, value in changes.items():
        if value is None:
            current.pop(key, None)
        else:
            current[key] = value
    row.fields_set = sorted(current)
    row.sealed = (
        box.encrypt(
            json.dumps(current, sort_keys=True),
            associated_data=associated_data(tenant_id, row.provider),
        )
        if current
        else None
    )


async def update_provider_settings(
    session: AsyncSession,
    actor: Principal,
    box: Sealer,
    now: datetime,
    *,
    enabled: Sequence[str] | None = None,
    credentials: CredentialChanges | None = None,
) -> ProviderSettingsView:
    """`enabled` (when given) is the whole set of providers that are on. `credentials` merges:
    a string sets a field, None removes it, fields not named keep their value."""
    credentials = credentials or {}
    _check_changes(enabled, credentials)
    touched = sorted(set(PROVIDERS if enabled is not None else ()) | set(credentials))
    tenant_id = actor.tenant_id
    async with session.begin():
        await set_tenant(session, tenant_id)
        rows = await _lock_rows(session, tenant_id, touched)
        before = {p: (r.enabled, list(r.fields_set)) for p, r in rows.items()}
        for provider, row in rows.items():
            if enabled is not None:
                row.enabled = provider in enabled
            if provider in credentials:
                _apply_credentials(box, tenant_id, row, credentials[provider])
            row.updated_at = now
        audit.record(
            session,
            tenant_id,
            audit.Actor.user(actor.user_id),
            "provider_settings.updated",
            "tenant",
            tenant_id,
            before={p: {"enabled": e, "fields_set": f} for p, (e, f) in before.items()},
            after={p: {"enabled": r.enabled, "fields_set": r.fields_set} for p, r in rows.items()},
        )
        await session.flush()
        return await _view(session, tenant_id)


async def _view(session: AsyncSession, tenant_id: uuid.UUID) -> ProviderSettingsView:
    rows = await session.scalars(
        select(TenantProviderSetting).where(TenantProviderSetting.tenant_id == tenant_id)
    )
    stored = {row.provider: row for row in rows}
    states = []
    for provider in PROVIDERS:
        row = stored.get(provider)
        if row is None:
            states.append(ProviderState(provider, provider in DEFAULT_ENABLED, ()))
        else:
            states.append(ProviderState(provider, row.enabled, tuple(row.fields_set)))
    return ProviderSettingsView(tuple(states))


async def get_provider_settings(
    session: AsyncSession, tenant_id: uuid.UUID
) -> ProviderSettingsView:
    """Which providers are on and which credential fields are set; never a secret."""
    async with session.begin():
        await set_tenant(session, tenant_id)
        return await _view(session, tenant_id)


async def load_provider_config(
    session: AsyncSession, tenant_id: uuid.UUID, provider: str, box: Sealer
) -> ProviderConfig:
    """The tenant's decrypted config for one provider, for a job about to call it. A provider
    the tenant never configured gets its default on/off state and no credentials."""
    if provider not in PROVIDERS:
        raise ValueError(f"unknown provider {provider!r}")
    async with session.begin():
        await set_tenant(session, tenant_id)
        row = await session.scalar(
            select(TenantProviderSetting).where(
                TenantProviderSetting.tenant_id == tenant_id,
                TenantProviderSetting.provider == provider,
            )
        )
    if row is None:
        return ProviderConfig(provider, provider in DEFAULT_ENABLED)
    return ProviderConfig(provider, row.enabled, _open(box, tenant_id, row))


async def provider_enabled(session: AsyncSession, tenant_id: uuid.UUID, provider: str) -> bool:
    """Whether the tenant takes payments (or sends messages) through `provider`, read in the
    caller's transaction (tenant already set)."""
    enabled = await session.scalar(_ENABLED, {"tenant_id": tenant_id, "provider": provider})
    return _enabled(provider, enabled)


def provider_enabled_statement(tenant_id: uuid.UUID, provider: str) -> tuple[str, dict[str, Any]]:
    """provider_enabled's statement as psycopg SQL, for a caller that sends it with others in
    one round trip (app.db.run_together); provider_enabled_from reads its rows."""
    return _ENABLED_SQL, {"tenant_id": tenant_id, "provider": provider}


def provider_enabled_from(rows: Sequence[Any], provider: str) -> bool:
    return _enabled(provider, rows[0][0] if rows else None)


def _enabled(provider: str, enabled: bool | None) -> bool:
    return provider in DEFAULT_ENABLED if enabled is None else bool(enabled)


# Built once: read on every booking's hot path.
_ENABLED = select(TenantProviderSetting.enabled).where(
    TenantProviderSetting.tenant_id == bindparam("tenant_id"),
    TenantProviderSetting.provider == bindparam("provider"),
)
_ENABLED_SQL = psycopg_sql(_ENABLED)
