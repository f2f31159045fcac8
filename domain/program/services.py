"""Use cases for the program settings."""

from __future__ import annotations

import dataclasses
from typing import Any

from tortoise.transactions import in_transaction

from domain import sql
from domain.program.model import DEFAULTS, ProgramSettings, validate_program
from domain.program.tables import PROGRAM_ROW_ID, ProgramRow

_FIELDS = [f.name for f in dataclasses.fields(ProgramSettings) if f.name != "updated_at"]


async def get_program() -> ProgramSettings:
    # Every purchase reads it: a plain statement (domain.sql), the row typed by the model.
    found = await sql.rows("SELECT * FROM program WHERE id = $1", PROGRAM_ROW_ID)
    return ProgramRow._init_from_db(**found[0]).to_domain() if found else DEFAULTS


async def update_program(changes: dict[str, Any]) -> ProgramSettings:
    """Apply the given field changes (snake_case names) after validating the result."""
    async with in_transaction():
        row = await ProgramRow.get_or_none(id=PROGRAM_ROW_ID)
        current = row.to_domain() if row else DEFAULTS
        if "sla_targets" in changes:  # the priorities given replace theirs, the rest stay
            changes = {**changes, "sla_targets": {**current.sla_targets,
                                                  **changes["sla_targets"]}}
        updated = current.changed(**changes)
        validate_program(updated)
        values = {name: getattr(updated, name) for name in _FIELDS}
        if row is None:
            row = await ProgramRow.create(id=PROGRAM_ROW_ID, **values)
        else:
            row.update_from_dict(values)
            await row.save()
        return row.to_domain()


async def ensure_program_row() -> None:
    """Create the settings row with defaults if it is missing (used by the first migration)."""
    if not await ProgramRow.exists(id=PROGRAM_ROW_ID):
        await ProgramRow.create(
            id=PROGRAM_ROW_ID, **{name: getattr(DEFAULTS, name) for name in _FIELDS}
        )
