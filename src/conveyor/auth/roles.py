"""Roles and what they may do: plain data."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"


_RANK = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}


def allows(held: Role | str, needed: Role) -> bool:
    """Admins may do what operators may; operators what viewers may."""
    return _RANK[Role(held)] >= _RANK[needed]


def parse_role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        choices = ", ".join(r.value for r in Role)
        raise ValueError(f"role must be one of {choices}, not {value!r}") from None
