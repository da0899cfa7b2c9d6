"""get_billing: charges and invoices for a range, and what is billing right now."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated

from mcp.server.mcpserver import Context
from pydantic import BaseModel, Field

from vast_mcp.provisioning.errors import UserFacingError
from vast_mcp.tools.base import READ_ONLY, ToolSpec, services
from vast_mcp.vast.models import Charge
from vast_mcp.views import untrusted

DateArg = Annotated[date | None, Field(description="YYYY-MM-DD (UTC)")]


class Line(BaseModel):
    when: str | None
    source: str | None = Field(description='e.g. "instance-123"')
    description: str | None
    amount: float = Field(description="$")


class BurnLine(BaseModel):
    instance_id: int
    status: str | None
    per_hour: float = Field(description="$/h now: full price if running, storage only otherwise")


class Billing(BaseModel):
    start: str
    end: str
    charges: list[Line]
    charges_total: float
    invoices: list[Line] = Field(description="payments, credits, refunds")
    burn_rate_per_hour: float = Field(description="$/h being spent right now, storage of stopped instances included")
    burn: list[BurnLine]
    credit: float = Field(description="account credit left, $")


def _line(charge: Charge) -> Line:
    when = datetime.fromtimestamp(charge.start, UTC).strftime("%Y-%m-%d %H:%M") if charge.start else None
    return Line(
        when=when,
        source=charge.source,
        description=untrusted(charge.description, 200),
        amount=round(charge.amount, 4),
    )


async def get_billing(
    ctx: Context,
    start_date: DateArg = None,
    end_date: DateArg = None,
    days: Annotated[int, Field(ge=1, le=366, description="range length when start_date is not given")] = 7,
) -> Billing:
    """Charges and invoices for a date range (default the last 7 days) and the current burn
    rate per instance, stopped instances' storage included.
    """
    end_day = end_date or datetime.now(UTC).date()
    try:
        start_day = start_date or end_day - timedelta(days=days - 1)
    except OverflowError:
        raise UserFacingError("That date range starts before the year 1; give a later end_date.") from None
    if start_day > end_day:
        raise UserFacingError("start_date is after end_date; swap them.")
    start = datetime.combine(start_day, time.min, UTC)
    end = datetime.combine(end_day, time.max, UTC)
    vast = services(ctx).vast
    charges = await vast.account.charges(start, end)
    invoices = await vast.account.invoices(start, end)
    instances = await vast.instances.list()
    user = await vast.account.current_user()
    burn = [
        BurnLine(
            instance_id=i.id,
            status=i.actual_status,
            per_hour=round(i.dph_total if i.actual_status == "running" else i.storage_total_cost, 4),
        )
        for i in instances
    ]
    return Billing(
        start=start_day.isoformat(),
        end=end_day.isoformat(),
        charges=[_line(c) for c in charges],
        charges_total=round(sum(c.amount for c in charges), 4),
        invoices=[_line(c) for c in invoices],
        burn_rate_per_hour=round(sum(b.per_hour for b in burn), 4),
        burn=burn,
        credit=round(user.credit, 2),
    )


TOOLS = [ToolSpec(get_billing, "read", "Billing and burn rate", READ_ONLY)]
