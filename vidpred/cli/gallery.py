"""`vidpred gallery`."""

from __future__ import annotations

import argparse
from pathlib import Path

from .console import stderr
from .shared import HelpFormatter
from .validators import port_number


def add_gallery(sub) -> None:
    p = sub.add_parser(
        "gallery",
        help="write an index.html that shows every render in a folder",
        description="Write a self-contained RENDERS_DIR/index.html: each render as a video "
        "with its PSNR next to copy-last, the weights used and their training curve. Open "
        "it straight from disk, or with --serve.",
        formatter_class=HelpFormatter,
    )
    p.add_argument(
        "renders_dir",
        nargs="?",
        type=Path,
        default=Path("renders"),
        metavar="RENDERS_DIR",
        help="folder of renders",
    )
    p.add_argument(
        "--force", action="store_true", help="overwrite an index.html vidpred did not write"
    )
    p.add_argument("--serve", action="store_true", help="then serve the folder on localhost")
    p.add_argument(
        "--port", type=port_number, default=8000, help="port for --serve (0: any free port)"
    )
    p.set_defaults(func=cmd_gallery)


def cmd_gallery(args: argparse.Namespace) -> int:
    from ..gallery import shown, write_gallery
    from ..serve import serve

    index = write_gallery(args.renders_dir, force=args.force)
    print(shown(index))
    if args.serve:
        server = serve(args.renders_dir, args.port)
        host, port = server.server_address[:2]
        # markup=False: a folder named like "g[/b]" is a path, not rich markup.
        stderr.print(
            f"serving {shown(args.renders_dir)} at http://{host}:{port}/ (Ctrl-C stops)",
            markup=False,
            highlight=False,
        )
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
    return 0
