"""Browse TALI rows in a local web page: the Wikipedia image and every language's texts, the
clip playing with its waveform, spectrogram and subtitles on one timeline, and the window,
frames and audio the loader cuts for a config you edit in the page.

Serves only the rows of the sources given here, on 127.0.0.1 (this machine) unless
--allow-remote. Stop it with Ctrl+C.

examples:
  tali view sample                          # the built-in sample dataset (gallery: /gallery/train)
  tali view ~/TALI --split val --port 0     # a downloaded dataset, any free port
  tali view ~/TALI --metrics metrics.parquet   # show each row's metrics, filter on them
  tali view ~/TALI --report validation.json    # show each row's failed checks
  tali view ~/A ~/B --metrics a.parquet --metrics b.parquet   # the i-th table is the i-th SOURCE's
"""

from __future__ import annotations

import argparse

HELP = "browse rows in a local web page: clip, timeline, texts and the loader's window"


def register(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "source",
        nargs="+",
        metavar="SOURCE",
        help="dataset directory (Hub layout), parquet file(s), 'sample' for the built-in sample data, "
        "or a Hub id / hf:// URL browsed over HTTP without downloading (search and gallery need local shards)",
    )
    parser.add_argument(
        "--endpoint", default=None, help="Hub endpoint for a Hub SOURCE (default: HF_ENDPOINT)"
    )
    parser.add_argument("--split", action="append", default=None, help="serve only this split (repeatable)")
    parser.add_argument(
        "--metrics",
        action="append",
        default=None,
        help="metrics parquet from `tali metrics` (per-row table, filter); repeat it for the next SOURCE",
    )
    parser.add_argument(
        "--report",
        action="append",
        default=None,
        help="JSON report from `tali validate --report` (failed checks); repeat it for the next SOURCE",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port (default: 8765; 0 picks a free one)")
    parser.add_argument(
        "--allow-remote", action="store_true", help="allow a --host other machines can reach (no login!)"
    )
    parser.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="another Host name the page is reached by (with --allow-remote; repeatable)",
    )
    parser.add_argument(
        "--selections",
        default="tali-selections",
        metavar="DIR",
        help="folder the gallery saves named selections in, as `tali filter --index` files "
        "(default: ./tali-selections, made on the first save)",
    )
    parser.add_argument("--open", action="store_true", help="open the page in this machine's web browser")


def run(args: argparse.Namespace) -> int:
    from tali.cli._config_args import resolve_source
    from tali.errors import TaliConfigError
    from tali.view import Catalog, ViewerServer

    sources = [resolve_source(s) if s == "sample" else s for s in args.source]
    for flag, given in (("--metrics", args.metrics), ("--report", args.report)):
        if given and len(given) > len(sources):
            raise TaliConfigError(
                f"{len(given)} {flag} for {len(sources)} sources: give one per SOURCE, in order"
            )
    catalog = Catalog(
        sources, splits=args.split, storage_options={"endpoint": args.endpoint} if args.endpoint else None
    )
    server = ViewerServer(
        catalog,
        host=args.host,
        port=args.port,
        metrics=args.metrics,
        report=args.report,
        allow_remote=args.allow_remote,
        allowed_hosts=args.allowed_host,
        selections=args.selections,
    )
    rows = ", ".join(f"{v.name} ({v.num_rows} rows)" for v in catalog.splits.values())
    print(f"tali view: serving {rows}")
    print(f"tali view: open {server.url}  (Ctrl+C stops)", flush=True)
    print(f"tali view: gallery {server.base_url}/gallery/{catalog.first_split}", flush=True)
    if args.open:
        import webbrowser

        webbrowser.open(server.url)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    return 0
