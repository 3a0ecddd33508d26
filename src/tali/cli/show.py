"""Draw rows of a TALI split into a PNG, exactly as the loader returns them.

Without --detail: a contact sheet, one line per row (the Wikipedia image, the frames
of the chosen window with their timestamps, the caption with its language and the
YouTube title). With --detail and one row: the full sample figure (frames strip,
the whole clip's waveform and log-mel spectrogram with the window shaded, subtitle
lines on the same time axis, the Wikipedia image with its caption).

Works without a display (matplotlib's Agg backend). SOURCE `sample` is the bundled
sample dataset.

examples:
  tali show sample --rows 0-7 --out sheet.png
  tali show ~/data/TALI --split val --rows 0,5,9 --frames 4 --seconds 2 --out val.png
  tali show sample --rows 3 --detail --out row3.png"""

from __future__ import annotations

import argparse
from typing import Any

HELP = "draw rows (frames, audio, subtitles, image + caption) into a PNG"


def register(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("source", help="dataset directory (Hub layout), a parquet file, or 'sample'")
    parser.add_argument("--split", default="train", help="split to read (default train)")
    parser.add_argument(
        "--rows", default="0-3", help="row indices in the split: '0,3,5' or '0-7' (default 0-3)"
    )
    parser.add_argument("--out", required=True, metavar="PNG", help="where to write the picture")
    parser.add_argument("--detail", action="store_true", help="the full figure of one row instead of a sheet")
    parser.add_argument("--frames", type=int, default=6, help="frames per window (default 6)")
    parser.add_argument("--seconds", type=float, default=3.0, help="window length in seconds (default 3)")
    parser.add_argument("--start", default="random", help="window start: random, start, centre or seconds")
    parser.add_argument("--size", type=int, default=128, help="frame and image size in pixels (default 128)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the window/frame/language choices")
    parser.add_argument("--epoch", type=int, default=0, help="epoch the choices are drawn for (default 0)")
    parser.add_argument("--dpi", type=int, default=100, help="pixels per inch of the PNG (default 100)")


def _start(value: str) -> Any:
    """A number of seconds, else a mode name (WindowConfig checks it)."""
    try:
        return float(value)
    except ValueError:
        return value


def run(args: argparse.Namespace) -> int:
    import dataclasses
    from pathlib import Path

    from rich.console import Console

    import tali
    from tali.atomic import publishing
    from tali.cli._source import resolve_source
    from tali.errors import TaliConfigError
    from tali.viz import VIEW_CONFIG, contact_sheet, parse_rows, plot_sample

    out = Path(args.out)
    if out.suffix.lower() != ".png":
        raise TaliConfigError(f"--out {args.out}: give a .png path")
    if not out.parent.is_dir():
        raise TaliConfigError(f"--out {args.out}: folder {out.parent} does not exist")
    if args.dpi < 10 or args.dpi > 600:
        raise TaliConfigError(f"--dpi {args.dpi}: choose 10..600")
    config = dataclasses.replace(
        VIEW_CONFIG,
        window=tali.WindowConfig(seconds=args.seconds, start=_start(args.start)),
        video=dataclasses.replace(VIEW_CONFIG.video, num_frames=args.frames, size=args.size),
        image=dataclasses.replace(VIEW_CONFIG.image, size=args.size),
        seed=args.seed,
    )
    dataset = tali.TaliDataset(resolve_source(args.source), split=args.split, config=config)
    dataset.set_epoch(args.epoch)
    rows = parse_rows(args.rows, len(dataset))
    if args.detail:
        if len(rows) != 1:
            raise TaliConfigError(f"--detail draws one row; --rows {args.rows!r} names {len(rows)}")
        figure = plot_sample(dataset[rows[0]], row=dataset.read_row(rows[0]))
    else:
        figure = contact_sheet(dataset, rows)
    with publishing(out.with_name(f".{out.name}.partial"), out) as partial:
        figure.savefig(partial, dpi=args.dpi, format="png")
    Console().print(f"{len(rows)} row(s) of {args.split} -> {out}", markup=False)
    return 0
