"""See a TALI sample: figures of what the loader returns, headless (Agg, no display needed).

>>> ds = tali.TaliDataset(root, split="train", config=tali.viz.VIEW_CONFIG)
>>> tali.viz.plot_sample(ds[0], row=ds.read_row(0)).savefig("sample.png")
>>> tali.viz.contact_sheet(ds, rows=range(8)).savefig("sheet.png")
"""

from tali.viz.figure import new_figure, png_bytes
from tali.viz.sample import VIEW_CONFIG, batch_element, clip_context, log_mel, plot_sample
from tali.viz.sheet import MAX_SHEET_ROWS, contact_sheet, parse_rows

__all__ = [
    "MAX_SHEET_ROWS",
    "VIEW_CONFIG",
    "batch_element",
    "clip_context",
    "contact_sheet",
    "log_mel",
    "new_figure",
    "parse_rows",
    "plot_sample",
    "png_bytes",
]
