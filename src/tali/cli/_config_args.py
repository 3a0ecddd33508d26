"""Config flags shared by ``tali profile`` and ``tali bench``: the few knobs that
change decoding cost, mapped onto :class:`~tali.config.TaliConfig`."""

from __future__ import annotations

import argparse
from typing import Any

from tali.cli._common import positive_float, positive_int
from tali.cli._source import resolve_source  # noqa: F401  (one rule for SOURCE; re-exported)


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("sample config")
    group.add_argument("--split", default="train", help="split to read (train, val, test)")
    group.add_argument(
        "--modalities", default=None, help="comma-separated sub-modalities or modalities (default: all)"
    )
    group.add_argument("--seconds", type=positive_float, default=3.0, help="window length in seconds")
    group.add_argument("--whole-clip", action="store_true", help="window = the whole clip")
    group.add_argument("--num-frames", type=positive_int, default=8, help="video frames per sample")
    group.add_argument(
        "--size", type=positive_int, default=224, help="output frame/image size (short side, then crop)"
    )
    group.add_argument(
        "--selection",
        default="uniform",
        choices=("random", "uniform", "sequential"),
        help="which frames of the window",
    )
    group.add_argument(
        "--interpolation",
        default="bicubic",
        choices=("bicubic", "bilinear", "area"),
        help="frame scaling filter",
    )
    group.add_argument("--keyframes-only", action="store_true", help="decode keyframes only (fast, coarse)")
    group.add_argument("--sample-rate", type=positive_int, default=16_000, help="audio sample rate (Hz)")
    group.add_argument("--seed", type=int, default=0, help="root of every random choice")


def config_from_args(args: argparse.Namespace) -> Any:
    """The flags as a :class:`~tali.config.TaliConfig`, through the one parser
    (:meth:`TaliConfig.from_dict`) a pipeline file and the viewer use too."""
    from tali.config import TaliConfig

    data: dict[str, Any] = {
        "window": {"seconds": None if args.whole_clip else args.seconds},
        "video": {
            "num_frames": args.num_frames,
            "size": args.size,
            "selection": args.selection,
            "interpolation": args.interpolation,
            "keyframes_only": args.keyframes_only,
        },
        # Real TALI rows always have audio; the sample data has one silent mp4 on purpose.
        "audio": {"sample_rate": args.sample_rate, "on_missing": "zeros"},
        "image": {"size": args.size},
        "seed": args.seed,
    }
    if args.modalities:
        data["modalities"] = args.modalities
    return TaliConfig.from_dict(data, where="flags")
