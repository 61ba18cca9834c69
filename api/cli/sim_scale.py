"""Placeholder; the owning feature fills this in."""

from __future__ import annotations

from api.cli import CliParsers


def register(parsers: CliParsers) -> None:
    del parsers
