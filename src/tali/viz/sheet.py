"""A contact sheet: N rows of a dataset, one line each (Wikipedia image, the window's frames,
the caption and the YouTube title), as ``tali show --out sheet.png`` writes it.

>>> fig = tali.viz.contact_sheet(ds, rows=[0, 1, 2, 3])
>>> fig.savefig("sheet.png")
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tali.errors import TaliConfigError, TaliError
from tali.schema import SubModality
from tali.viz.figure import new_figure
from tali.viz.sample import _image

__all__ = ["MAX_SHEET_ROWS", "contact_sheet", "parse_rows"]

S = SubModality
#: One sheet stays legible (and bounded in memory) up to this many rows.
MAX_SHEET_ROWS = 64


def parse_rows(spec: str, length: int) -> list[int]:
    """``"0,3,5"``, ``"0-7"`` or ``"2-4,9"`` -> row indices, each checked against ``length``."""
    rows: list[int] = []
    for part in spec.split(","):
        part = part.strip()
        try:
            if "-" in part:
                lo, hi = part.split("-", 1)
                first, last = int(lo), int(hi)
                if last < first:
                    raise ValueError
                rows.extend(range(first, last + 1))
            else:
                rows.append(int(part))
        except ValueError:
            raise TaliConfigError(f"--rows {spec!r}: use indices like '0,3,5' or ranges like '0-7'") from None
    bad = [r for r in rows if not 0 <= r < length]
    if bad:
        raise TaliConfigError(f"row {bad[0]} is out of range: the split has {length} rows (0..{length - 1})")
    if len(rows) > MAX_SHEET_ROWS:
        raise TaliConfigError(f"{len(rows)} rows asked for; a sheet holds at most {MAX_SHEET_ROWS}")
    return rows


def contact_sheet(dataset: Any, rows: Sequence[int], *, cell: float = 1.6) -> Any:
    """One figure line per row of ``dataset`` (a :class:`tali.TaliDataset`); a row that fails to
    decode shows its error instead of stopping the sheet. Image artists carry ``gid``
    ``"frame:<row>:<k>"`` / ``"wikipedia_image:<row>"``."""
    if not rows:
        raise TaliConfigError("a contact sheet needs at least one row")
    num_frames = dataset.config.video.num_frames if dataset.config.wants(S.YOUTUBE_CONTENT_VIDEO) else 0
    columns = 1 + num_frames + 2  # image, frames, text (two cells wide)
    figure = new_figure(cell * columns, cell * len(rows) + 0.4)
    axes = figure.subplots(len(rows), columns, squeeze=False)
    for line, index in zip(axes, rows, strict=True):
        for ax in line:
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_frame_on(False)
        text_ax = line[-2]
        line[-1].set_visible(False)
        try:
            sample = dataset[index]
        except TaliError as exc:
            text_ax.text(
                0,
                0.5,
                f"row {index}: {type(exc).__name__}: {exc}"[:120],
                fontsize=7,
                color="#c44e52",
                va="center",
                wrap=True,
            )
            continue
        image = sample.get(S.WIKIPEDIA_CAPTION_IMAGE.value)
        if image is not None:
            line[0].imshow(_image(image["pixels"]), gid=f"wikipedia_image:{index}")
        line[0].set_ylabel(f"row {index}\nitem {sample.get('item_idx')}", fontsize=7)
        video = sample.get(S.YOUTUBE_CONTENT_VIDEO.value)
        if video is not None:
            for k in range(num_frames):
                ax = line[1 + k]
                real = bool(video["mask"][k])
                ax.imshow(_image(video["frames"][k]), gid=f"frame:{index}:{k}", alpha=1.0 if real else 0.35)
                ax.set_title(f"{float(video['pts_seconds'][k]):.2f} s" if real else "padded", fontsize=6)
        caption = sample.get(S.WIKIPEDIA_CAPTION_TEXT.value) or {}
        youtube = (sample.get(S.YOUTUBE_TITLE_TEXT.value) or {}).get("text", "")
        window = sample.get("window")
        where = f"window {window['start_seconds']:.2f}+{window['duration_seconds']:.2f} s\n" if window else ""
        text_ax.text(
            0,
            0.5,
            f"[{caption.get('language')}] {caption.get('text', '')}\n{youtube}\n{where}"[:200],
            fontsize=7,
            va="center",
            gid=f"caption:{index}",
        )
    figure.suptitle(f"{len(rows)} rows", fontsize=9)
    return figure
