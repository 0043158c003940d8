"""Words for the domain's codes, as catalogue msgids (translated when rendered)."""

from __future__ import annotations

from app.presentation.i18n import N_

STATUS_LABELS = {
    "pending_payment": N_("Awaiting payment"),
    "confirmed": N_("Confirmed"),
    "checked_in": N_("Checked in"),
    "completed": N_("Completed"),
    "no_show": N_("No-show"),
    "cancelled": N_("Cancelled"),
    "expired": N_("Expired"),
}
ROLE_LABELS = {"owner": N_("Owner"), "admin": N_("Admin"), "staff": N_("Staff")}
