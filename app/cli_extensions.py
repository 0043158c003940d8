"""Domain subcommands of `reckon` (outbox list|retry, reconcile). Each sets `handler`."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    return None
