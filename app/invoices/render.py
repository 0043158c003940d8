"""The printable HTML page of an invoice or credit note. Every piece of text that came from a
user (business, customer, service and product names, tax label, footer) is escaped."""

from __future__ import annotations

from html import escape
from zoneinfo import ZoneInfo

from app.invoices.models import CREDIT_NOTE
from app.invoices.views import InvoiceView
from app.money import Money, format_minor

# No scripts, no remote resources: the page is self-contained and safe to print or archive.
CONTENT_SECURITY_POLICY = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'"

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; color: #111;
       max-width: 48rem; margin: 2rem auto; padding: 0 1rem; }
header { display: flex; justify-content: space-between; align-items: flex-start; }
h1 { font-size: 1.5rem; margin: 0 0 .25rem; }
.meta { text-align: right; }
.meta p, .customer p { margin: .1rem 0; }
table { width: 100%; border-collapse: collapse; margin-top: 1.5rem; }
th, td { padding: .4rem .5rem; border-bottom: 1px solid #ddd; text-align: left; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tfoot td { border-bottom: none; }
tfoot tr.total td { font-weight: 700; border-top: 2px solid #111; }
footer { margin-top: 2rem; color: #555; white-space: pre-line; }
@media print { body { margin: 0; max-width: none; } }
"""


def _text(value: object) -> str:
    return escape(str(value), quote=True)


def _money(money: Money) -> str:
    return _text(f"{format_minor(money.amount_minor, money.currency)} {money.currency}")


def percent(bps: int) -> str:
    """Basis points as a percentage without floats: 1400 -> "14", 1250 -> "12.5"."""
    whole, fraction = divmod(bps, 100)
    return f"{whole}.{fraction:02d}".rstrip("0").rstrip(".") if fraction else str(whole)


def invoice_html(view: InvoiceView) -> str:
    title = "Credit note" if view.kind == CREDIT_NOTE else "Invoice"
    issued = view.issued_at.astimezone(ZoneInfo(view.timezone))
    reference = (
        f"<p>Credits invoice {_text(view.credits_number)}</p>" if view.credits_number else ""
    )
    email = f"<p>{_text(view.customer_email)}</p>" if view.customer_email else ""
    footer = f"<footer>{_text(view.footer)}</footer>" if view.footer else ""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} {_text(view.number)} · {_text(view.business_name)}</title>
<style>{STYLE}</style>
</head>
<body>
<header>
<div><h1>{_text(view.business_name)}</h1></div>
<div class="meta">
<h1>{title}</h1>
<p>No. {_text(view.number)}</p>
<p>Date: <time datetime="{_text(issued.isoformat())}">{issued:%Y-%m-%d}</time></p>
{reference}
</div>
</header>
<section class="customer">
<p><strong>Billed to</strong></p>
<p>{_text(view.customer_name)}</p>
{email}
</section>
<table>
<thead><tr><th>Description</th><th class="num">Qty</th><th class="num">Unit price</th>
<th class="num">Amount</th></tr></thead>
<tbody>
{_rows(view)}
</tbody>
<tfoot>
<tr><td colspan="3">Subtotal (excl. {_text(view.tax_label)})</td>
<td class="num">{_money(view.subtotal)}</td></tr>
<tr><td colspan="3">{_text(view.tax_label)} {percent(view.tax_rate_bps)}%</td>
<td class="num">{_money(view.tax)}</td></tr>
<tr class="total"><td colspan="3">Total (incl. {_text(view.tax_label)})</td>
<td class="num">{_money(view.total)}</td></tr>
</tfoot>
</table>
{footer}
</body>
</html>
"""


def _rows(view: InvoiceView) -> str:
    return "\n".join(
        f'<tr><td>{_text(line.description)}</td><td class="num">{line.quantity}</td>'
        f'<td class="num">{_money(line.unit_price)}</td>'
        f'<td class="num">{_money(line.amount)}</td></tr>'
        for line in view.lines
    )
