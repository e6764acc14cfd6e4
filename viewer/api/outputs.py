"""A DynoAI run's output files, each verified against its manifest (GET /api/runs/{id}/outputs)."""
from __future__ import annotations

from ninja import Field, Schema

from ..outputs import output_list
from .base import ERRORS, _run, router


class OutputOut(Schema):
    name: str
    status: str = Field(description="matched, differs, missing (listed, not uploaded) or unlisted")
    size: int | None = Field(description="bytes kept; null when missing")
    sha256: str
    expected_sha256: str = Field(description="as the manifest records it; empty when unlisted")
    expected_size: int | None
    manifest_schema: str = Field(description="the manifest's `schema` for it (ve_delta_grid, session_replay...)")
    grid: bool = Field(description="a grid CSV, stored parsed as well")
    why: str = Field(description="why it differs, is missing or unlisted")


class OutputListOut(Schema):
    items: list[OutputOut]


@router.get("/runs/{run_id}/outputs", response={200: OutputListOut, **ERRORS},
            summary="The run's output files, verified against its manifest",
            description="In the manifest's order, unlisted files after. The file itself: `/runs/{id}/outputs/{name}`.")
def list_outputs(request, run_id: int):
    run = _run(request, run_id)
    items = [
        {"name": o.name, "status": o.status, "size": o.size, "sha256": o.sha256, "expected_sha256": o.expected_sha256,
         "expected_size": o.expected_size, "manifest_schema": o.schema, "grid": o.grid is not None, "why": o.why}
        for o in output_list(run)
    ]
    return {"items": items}
