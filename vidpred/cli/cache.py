"""`vidpred cache`."""

from __future__ import annotations

import argparse

from .shared import add_cache_dir_option


def add_cache(sub) -> None:
    p = sub.add_parser(
        "cache",
        help="show or clear the decode cache",
        description="Videos are decoded once per working size into a cache of uint8 frames; "
        "later runs read the cache. Without --clear, show where it is and how big it is.",
    )
    p.add_argument("--clear", action="store_true", help="remove every cached video")
    add_cache_dir_option(p)
    p.set_defaults(func=cmd_cache)


def cmd_cache(args: argparse.Namespace) -> int:
    from ..cache import cache_stats, clear_cache

    if args.clear:
        removed = clear_cache(args.cache_dir)
        print(
            f"removed {removed.entries} cached videos ({removed.bytes / 1e6:.1f} MB) "
            f"from {removed.folder}"
        )
    else:
        stats = cache_stats(args.cache_dir)
        print(f"{stats.folder}: {stats.entries} cached videos, {stats.bytes / 1e6:.1f} MB")
    return 0
