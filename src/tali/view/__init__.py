"""``tali view``: a local web viewer for TALI rows (``view`` extra: Starlette + uvicorn).

>>> catalog = Catalog([root])                          # only these sources are ever served
>>> with ViewerServer(catalog, port=0) as server:       # 127.0.0.1, a free port, a thread
...     print(server.url)                               # http://127.0.0.1:PORT/row/train/0

The page shows one row: the Wikipedia image and every WIT language's texts, the YouTube
texts, the clip (HTTP Range), its waveform, spectrogram and subtitle timeline, and the
window :class:`~tali.transform.TaliTransform` cuts for the page's config. See docs/VIEWER.md.
"""

from tali.view.app import create_app
from tali.view.catalog import Catalog, MetricsTable, RowNotFound
from tali.view.sample import SampleParams, WindowSample, decode_window
from tali.view.server import ViewerServer, check_host

__all__ = [
    "Catalog",
    "MetricsTable",
    "RowNotFound",
    "SampleParams",
    "ViewerServer",
    "WindowSample",
    "check_host",
    "create_app",
    "decode_window",
]
