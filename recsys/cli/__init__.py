"""The `recsys` command line. Heavy imports happen inside commands so `--help` stays instant."""

from __future__ import annotations

from recsys.cli.app import app


def main() -> None:
    app()


__all__ = ["app", "main"]
