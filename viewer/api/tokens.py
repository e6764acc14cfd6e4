"""LLM tokens and cost of a run's calls (issue 16.2)."""
from __future__ import annotations

from ninja import Field, Query, Schema

from .. import kinds, tokens
from .base import ERRORS, FilterQuery, _filter_form, _run, router


class TokenTotals(Schema):
    calls: int
    input: int | float = Field(description="input tokens, as the log counts them")
    output: int | float
    cost: float | None = Field(description="USD, an estimate from the price table; null where a model has no price")


class TokensOut(Schema):
    total: TokenTotals
    by_agent: dict[str, TokenTotals] = Field(description=f"agent id ({tokens.NO_AGENT!r} without one)")
    by_model: dict[str, TokenTotals]
    by_round: dict[str, TokenTotals] = Field(description=f"round ({tokens.NO_ROUND!r} without one)")


@router.get(
    "/runs/{run_id}/tokens",
    response={200: TokensOut, **ERRORS},
    summary="LLM tokens and estimated cost",
    description="Summed over the matching LLM calls only (the run page's filters apply). A run whose kind logs "
    "no LLM calls answers zeros. Cost: tokens times the price per million tokens of REPLAYWEB_PRICES "
    "(or the dated default table), an estimate.",
)
def run_tokens(request, run_id: int, filters: Query[FilterQuery]):
    run = _run(request, run_id)
    form = _filter_form(request, allow_paging=False)
    spec = kinds.profile(run).llm
    found = tokens.calls(run=run, spec=spec, filters=form.filters()) if spec else []
    return tokens.report(found)
