"""Argument types shared by the command groups."""

from __future__ import annotations

import argparse


def int_range(lo, hi=None):
    """An argparse ``type=`` for integers in ``[lo, hi]`` (thousands separators allowed)."""

    def parse(text):
        try:
            value = int(text.replace("_", "").replace(",", ""))
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if value < lo or (hi is not None and value > hi):
            bound = f"{lo}..{hi}" if hi is not None else f">= {lo}"
            raise argparse.ArgumentTypeError(f"must be {bound}, got {value}")
        return value

    return parse
