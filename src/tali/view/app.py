"""The viewer's web app (Starlette): one HTML page, a JSON API and the row's media.

Routes (``SPLIT`` is a split name the catalog serves, ``I`` the row's index in it)::

    /                               -> redirect to the first split's first row
    /row/SPLIT/I                    the row page (HTML; its script calls the API below)
    /api/splits                     splits, shards (first row, rows), whether metrics exist
    /api/row/SPLIT/I                the row's texts, subtitle timeline, clip/image headers, metrics,
                                    validation failures
    /api/window/SPLIT/I?PARAMS      the loader's window for the page's config (SampleParams)
    /api/item/N                     where the row with item_idx N is
    /api/search?split=&q=           titles and captions containing q (DuckDB, metadata only)
    /api/filter?split=&where=       rows passing a `tali filter` WHERE clause
    /gallery/SPLIT                  the gallery page (HTML): a grid of cards, sorted, filtered, paged
    /api/gallery?split=&where=&sort=&order=&page=&per_page=   one page of cards
    /api/selection (POST)           save tagged rows or the current filter as a named item-id index
    /api/selections                 the saved selections
    /media/SPLIT/I/thumb.png        the Wikipedia image as a card's thumbnail
    /media/SPLIT/I/poster.png       the clip's thumbnail as the loader returns it (middle frame)
    /media/SPLIT/I/video.mp4        the clip's bytes, with HTTP Range (206 / 416)
    /media/SPLIT/I/image.png        the Wikipedia image, decoded with tali's bounds, as PNG
    /media/SPLIT/I/waveform.json    min/max envelope of the whole clip's audio
    /media/SPLIT/I/spectrogram.png  the whole clip's spectrogram
    /media/SPLIT/I/frame/K.png?PARAMS  window frame K, lossless
    /media/SPLIT/I/window.wav?PARAMS   the window's audio, float32 WAV

Errors are one-line JSON ``{"error": ...}`` (HTML on the page route): 404 for a split, row or
item that is not served, 400 for a bad parameter, 403 for a cross-site or unvouched costly
request (:mod:`tali.view.guard`), 416 for a bad range, 422 when the row's own content cannot
be decoded, 503 + Retry-After when the work queues are full. No route takes a path; nothing
outside the catalog is opened, and only the selections folder is written.
"""

from __future__ import annotations

import html
import json
import logging
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import numpy as np

from tali.config import ImageConfig, TaliConfig
from tali.decode.image import decode_image
from tali.errors import TaliConfigError, TaliDataError, TaliError
from tali.schema import Column, ImageField, SubModality
from tali.transform import TaliTransform
from tali.view.catalog import Catalog, MetricsTable, RowNotFound, SplitView, ValidationFailures
from tali.view.describe import describe_row
from tali.view.gallery import Listing, SelectionStore, gallery_page, listing
from tali.view.guard import RequestGuard, ServerBusy, WorkQueue
from tali.view.media import (
    ANALYSIS_RATE,
    N_FFT,
    RangeNotSatisfiable,
    byte_range,
    envelope,
    png_bytes,
    spectrogram_db,
    spectrogram_png,
    wav_float32,
)
from tali.view.sample import (
    BoundedCache,
    ClipOverview,
    SampleParams,
    WindowSample,
    clip_overview,
    decode_window,
)

__all__ = ["ViewLimits", "create_app", "starlette"]

log = logging.getLogger("tali.view")
_INDEX = re.compile(r"^\d{1,15}$")
_STATIC = {"viewer.js": "text/javascript", "viewer.css": "text/css", "gallery.js": "text/javascript"}
#: The page loads only its own script, style and media.
_HEADERS = [
    (
        b"content-security-policy",
        (
            b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
            b"media-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
        ),
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]
MAX_IMAGE_SIDE = 1024
#: A gallery card's image: small enough for 100 cards a page, large enough to read.
THUMB_SIDE = 256
POSTER_SIDE = 224


def starlette() -> Any:
    try:
        import starlette.applications
    except ImportError:
        raise TaliConfigError("tali view needs the view extra: pip install 'tali-dataset[view]'") from None
    return starlette


def _index(text: str) -> int:
    if not _INDEX.match(text):
        raise RowNotFound(f"row index {text[:40]!r} is not a non-negative integer")
    return int(text)


class _Viewer:
    """State behind the routes: the catalog, the metrics table and a few bounded caches."""

    def __init__(
        self,
        catalog: Catalog,
        metrics: PerSource,
        report: PerSource,
        selections: str | os.PathLike[str] | None,
    ) -> None:
        self.catalog = catalog
        self.selections = SelectionStore(selections, catalog) if selections is not None else None
        self.listings: BoundedCache[tuple[str, str, bool], Listing] = BoundedCache(4)
        self.kept: BoundedCache[tuple[str, str], list[int]] = BoundedCache(8)
        # The i-th table or report belongs to the i-th source: a second source's rows never
        # show the first one's metrics or failures, whatever their item_idx.
        self.metrics_paths = _per_source(metrics)
        self.metrics = [MetricsTable(p) if p is not None else None for p in self.metrics_paths]
        self.reports = [ValidationFailures(p) if p is not None else None for p in _per_source(report)]
        self.rows: BoundedCache[tuple[str, int], dict[str, Any]] = BoundedCache(4)
        self.overviews: BoundedCache[tuple[str, int], ClipOverview] = BoundedCache(8)
        # A window holds its frames (up to 64 x 3 x 512 x 512 uint8 = 50 MB): keep a few.
        self.windows: BoundedCache[tuple[str, int, SampleParams], WindowSample] = BoundedCache(6)

    def metrics_path(self, view: SplitView) -> str | None:
        return self.metrics_paths[view.source] if view.source < len(self.metrics_paths) else None

    def metrics_of(self, view: SplitView) -> MetricsTable | None:
        return self.metrics[view.source] if view.source < len(self.metrics) else None

    def report_of(self, view: SplitView) -> ValidationFailures | None:
        return self.reports[view.source] if view.source < len(self.reports) else None

    def row(self, split: str, index_text: str) -> tuple[int, dict[str, Any]]:
        index = _index(index_text)
        self.catalog.check_index(split, index)
        return index, self.rows.get((split, index), lambda: self.catalog.read_row(split, index))

    def window(self, split: str, index_text: str, query: Any) -> WindowSample:
        params = SampleParams.from_query(query)
        index, row = self.row(split, index_text)
        return self.windows.get((split, index, params), lambda: decode_window(row, key=index, params=params))

    def overview(self, split: str, index_text: str) -> ClipOverview:
        index, row = self.row(split, index_text)
        return self.overviews.get((split, index), lambda: clip_overview(row))


PerSource = str | os.PathLike[str] | Sequence[str | os.PathLike[str] | None] | None


def _per_source(value: PerSource) -> list[str | None]:
    """One path (the first source's) or one per source, in order (``None``: that source has none)."""
    if value is None:
        return []
    if isinstance(value, str | os.PathLike):
        return [str(value)]
    return [str(v) if v is not None else None for v in value]


def _int(query: Any, name: str, default: int) -> int:
    text = query.get(name, str(default))
    if not _INDEX.match(text):
        raise TaliConfigError(f"{name}={text[:20]!r} must be a non-negative integer")
    return int(text)


def _columns(query: Any) -> int:
    text = query.get("columns", "800")
    if not _INDEX.match(text) or not 16 <= int(text) <= 4000:
        raise TaliConfigError(f"columns={text[:20]!r} must be an integer in [16, 4000]")
    return int(text)


def create_app(
    catalog: Catalog,
    *,
    metrics: PerSource = None,
    report: PerSource = None,
    allowed_hosts: Iterable[str] | None = None,
    limits: ViewLimits | None = None,
    selections: str | os.PathLike[str] | None = None,
) -> Any:
    """The ASGI app for ``catalog``. ``metrics``: a table from ``tali metrics``; ``report``: a
    JSON report from ``tali validate --report`` (each one path, for the first source, or a list
    with one per source); ``allowed_hosts``: ``Host`` names accepted (a page on
    another site cannot reach a loopback server through DNS rebinding); ``None`` accepts any;
    ``limits``: how many decodes and queries run and wait at once; ``selections``: the folder
    the gallery saves named selections in (``None``: saving is off)."""
    starlette()
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
    from starlette.routing import Route

    viewer = _Viewer(catalog, metrics, report, selections)
    # A card's clip frame: the loader's own thumbnail sub-modality (the stored thumbnail when a
    # row has one, else the clip's middle frame), square at the gallery's size.
    poster_transform = TaliTransform(
        TaliConfig(modalities=(SubModality.YOUTUBE_THUMBNAIL_IMAGE,), image=ImageConfig(size=POSTER_SIDE))
    )
    limits = limits or ViewLimits()
    # Decodes (windows, frames, audio, images, spectrograms), SQL (filter, search) and row reads
    # each run in their own bounded pool of worker threads; everything else runs on the event loop.
    decodes = WorkQueue(
        "decodes", slots=limits.decode_slots, queue=limits.decode_queue, wait_seconds=limits.wait_seconds
    )
    queries = WorkQueue(
        "queries", slots=limits.query_slots, queue=limits.query_queue, wait_seconds=limits.wait_seconds
    )
    reads = WorkQueue(
        "row reads", slots=limits.read_slots, queue=limits.read_queue, wait_seconds=limits.wait_seconds
    )

    def on(queue: WorkQueue, endpoint: Any) -> Any:
        async def run(request: Request) -> Response:
            return await queue.run(lambda: endpoint(request))  # type: ignore[no-any-return]

        return run

    async def page(request: Request) -> Response:
        split, index = request.path_params["split"], request.path_params["index"]
        catalog.check_index(split, _index(index))
        text = resources.files("tali.view").joinpath("static/index.html").read_text()
        return HTMLResponse(text)

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in _STATIC:
            raise RowNotFound(f"no static file {name[:40]!r}")
        return Response(
            resources.files("tali.view").joinpath(f"static/{name}").read_bytes(), media_type=_STATIC[name]
        )

    async def home(request: Request) -> Response:
        return RedirectResponse(f"/row/{catalog.first_split}/0", status_code=307)

    async def splits(request: Request) -> Response:
        return JSONResponse(
            {
                "splits": [
                    {"name": v.name, "rows": v.num_rows, "shards": v.shards()}
                    for v in catalog.splits.values()
                ],
                "first": {"split": catalog.first_split, "index": 0},
                "metrics": any(p is not None for p in viewer.metrics_paths),
                "validation": any(r is not None for r in viewer.reports),
            }
        )

    def row(request: Request) -> Response:
        split = request.path_params["split"]
        index, data = viewer.row(split, request.path_params["index"])
        view = catalog.split(split)
        shard, shard_row = view.locate(index)
        out = describe_row(data)
        table, report = viewer.metrics_of(view), viewer.report_of(view)
        shard_name = os.path.basename(view.files[shard])
        out.update(
            split=split,
            index=index,
            num_rows=view.num_rows,
            shard={"number": shard, "name": os.path.basename(view.files[shard]), "row": shard_row},
            metrics=table.row(out["item_idx"], shard_name, shard_row) if table is not None else None,
            validation=report.row(out["item_idx"], shard_name, shard_row) if report is not None else None,
        )
        return JSONResponse(out)

    def window(request: Request) -> Response:
        split, index = request.path_params["split"], request.path_params["index"]
        params = SampleParams.from_query(request.query_params)
        sample = viewer.window(split, index, request.query_params)
        query = "&".join(f"{k}={v}" for k, v in params.to_query().items())
        out = sample.summary()
        out["params"] = params.to_query()
        out["frame_urls"] = [
            f"/media/{split}/{sample.key}/frame/{k}.png?{query}" for k in range(len(sample.frames))
        ]
        out["audio_url"] = f"/media/{split}/{sample.key}/window.wav?{query}"
        return JSONResponse(out)

    def item(request: Request) -> Response:
        text = request.path_params["item_idx"]
        if not re.match(r"^-?\d{1,18}$", text):
            raise RowNotFound(f"item_idx {text[:40]!r} is not an integer")
        split, index = catalog.find_item(int(text))
        return JSONResponse({"split": split, "index": index})

    def search(request: Request) -> Response:
        split = request.query_params.get("split", catalog.first_split)
        hits, total = catalog.search(split, request.query_params.get("q", ""))
        return JSONResponse(
            {
                "total": total,
                "hits": [
                    {"index": h.index, "item_idx": h.item_idx, "title": h.title, "page_title": h.page_title}
                    for h in hits
                ],
            }
        )

    def filter_rows(request: Request) -> Response:
        split = request.query_params.get("split", catalog.first_split)
        where = request.query_params.get("where", "")
        if len(where) > 2000:
            raise TaliConfigError("a WHERE clause is at most 2000 characters")
        rows, read = catalog.filter(split, where, viewer.metrics_path(catalog.split(split)))
        return JSONResponse(
            {"split": split, "where": where, "read": read, "kept": len(rows), "indices": rows}
        )

    def video(request: Request) -> Response:
        _, data = viewer.row(request.path_params["split"], request.path_params["index"])
        body = data.get(str(Column.YOUTUBE_VIDEO_CONTENT)) or b""
        headers = {"accept-ranges": "bytes", "cache-control": "no-cache"}
        try:
            span = byte_range(request.headers.get("range"), len(body))
        except RangeNotSatisfiable:
            return Response(status_code=416, headers={**headers, "content-range": f"bytes */{len(body)}"})
        if span is None:
            return Response(body, media_type="video/mp4", headers=headers)
        first, last = span
        headers["content-range"] = f"bytes {first}-{last}/{len(body)}"
        return Response(body[first : last + 1], status_code=206, media_type="video/mp4", headers=headers)

    def image(request: Request) -> Response:
        _, data = viewer.row(request.path_params["split"], request.path_params["index"])
        value = data.get(str(Column.IMAGE))
        raw = value.get(str(ImageField.BYTES)) if isinstance(value, dict) else value
        pil = decode_image(raw, size=None, max_pixels=ImageConfig().max_pixels, item_idx=data.get("item_idx"))
        pil.thumbnail((MAX_IMAGE_SIDE, MAX_IMAGE_SIDE))
        return Response(png_bytes(np.asarray(pil)), media_type="image/png")

    def waveform(request: Request) -> Response:
        columns = _columns(request.query_params)
        overview = viewer.overview(request.path_params["split"], request.path_params["index"])
        body: dict[str, Any] = {"duration_seconds": overview.info.duration_seconds, "columns": columns}
        if overview.audio is None:
            body.update(missing=True, min=[], max=[])
        else:
            low, high = envelope(overview.audio, columns)
            body["audio_seconds"] = overview.audio.size / ANALYSIS_RATE
            body.update(
                missing=False, min=[round(float(v), 4) for v in low], max=[round(float(v), 4) for v in high]
            )
        return JSONResponse(body)

    def spectrogram(request: Request) -> Response:
        columns = _columns(request.query_params)
        overview = viewer.overview(request.path_params["split"], request.path_params["index"])
        if overview.audio is None:
            raise TaliDataError(
                "the clip has no audio stream", item_idx=None, field=str(Column.YOUTUBE_VIDEO_CONTENT)
            )
        return Response(
            spectrogram_png(spectrogram_db(overview.audio, columns, n_fft=N_FFT)),
            media_type="image/png",
            headers={"x-frequency-max-hz": "8000"},
        )

    def frame(request: Request) -> Response:
        sample = viewer.window(
            request.path_params["split"], request.path_params["index"], request.query_params
        )
        slot = request.path_params["slot"]
        if not _INDEX.match(slot) or int(slot) >= len(sample.frames):
            raise RowNotFound(f"frame {slot[:20]!r} is not in this window's {len(sample.frames)} frames")
        return Response(png_bytes(sample.frames[int(slot)]), media_type="image/png")

    def window_audio(request: Request) -> Response:
        sample = viewer.window(
            request.path_params["split"], request.path_params["index"], request.query_params
        )
        return Response(wav_float32(sample.waveform, sample.sample_rate), media_type="audio/wav")

    def error(request: Request, exc: Exception) -> Response:
        headers = {}
        if isinstance(exc, ServerBusy):
            status, headers = 503, {"retry-after": str(exc.retry_after)}
        elif isinstance(exc, RowNotFound):
            status = 404
        elif isinstance(exc, TaliConfigError):
            status = 400
        elif isinstance(exc, TaliDataError):
            status = 422
        elif isinstance(exc, TaliError):
            status = 500
        else:
            log.exception("tali view: %s %s failed", request.method, request.url.path)
            status, exc = 500, RuntimeError(f"internal error ({type(exc).__name__}); see the server log")
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if request.url.path.startswith("/row/"):
            return HTMLResponse(
                f"<!doctype html><title>tali view: {status}</title><h1>{status}</h1>"
                f'<p id="error">{html.escape(message)}</p><p><a href="/">first row</a></p>',
                status_code=status,
            )
        return JSONResponse({"error": message}, status_code=status, headers=headers)

    async def gallery(request: Request) -> Response:
        catalog.split(request.path_params["split"])
        text = resources.files("tali.view").joinpath("static/gallery.html").read_text()
        return HTMLResponse(text)

    def gallery_api(request: Request) -> Response:
        query = request.query_params
        split = query.get("split", catalog.first_split)
        view = catalog.split(split)
        where = query.get("where", "").strip()
        if len(where) > 2000:
            raise TaliConfigError("a WHERE clause is at most 2000 characters")
        sort = query.get("sort", "item_idx") or "item_idx"
        order = query.get("order", "asc")
        if order not in ("asc", "desc"):
            raise TaliConfigError(f"order={order[:20]!r}: choose asc or desc")
        page, per_page = _int(query, "page", 0), _int(query, "per_page", 24)
        path = viewer.metrics_path(view)
        ordered = viewer.listings.get(
            (split, sort, order == "desc"), lambda: listing(catalog, split, sort, order == "desc", path)
        )
        # A page turn re-runs nothing: the rows a WHERE keeps are cached with the listings.
        kept = (
            viewer.kept.get((split, where), lambda: catalog.filter(split, where, path)[0]) if where else None
        )
        out = gallery_page(ordered, kept, page, per_page).to_dict()
        out.update(
            split=split,
            rows=view.num_rows,
            where=where,
            sort=sort,
            order=order,
            columns=list(ordered.columns),
        )
        out["selections"] = viewer.selections is not None
        return JSONResponse(out)

    def thumbnail(request: Request) -> Response:
        _, data = viewer.row(request.path_params["split"], request.path_params["index"])
        value = data.get(str(Column.IMAGE))
        raw = value.get(str(ImageField.BYTES)) if isinstance(value, dict) else value
        pil = decode_image(raw, size=None, max_pixels=ImageConfig().max_pixels, item_idx=data.get("item_idx"))
        pil.thumbnail((THUMB_SIDE, THUMB_SIDE))
        return Response(
            png_bytes(np.asarray(pil)), media_type="image/png", headers={"cache-control": "max-age=600"}
        )

    def poster(request: Request) -> Response:
        index, data = viewer.row(request.path_params["split"], request.path_params["index"])
        sample = poster_transform(data, key=index)
        pixels = sample[SubModality.YOUTUBE_THUMBNAIL_IMAGE.value]["pixels"].numpy()
        return Response(png_bytes(pixels), media_type="image/png", headers={"cache-control": "max-age=600"})

    async def save_selection(request: Request) -> Response:
        if viewer.selections is None:
            raise TaliConfigError("saving selections is off: start tali view with --selections DIR")
        body = await request.body()
        if len(body) > 4 << 20:
            raise TaliConfigError("a selection request is at most 4 MB")
        try:
            blob = json.loads(body)
        except ValueError:
            raise TaliConfigError("a selection request is a JSON object") from None
        if not isinstance(blob, dict):
            raise TaliConfigError("a selection request is a JSON object")
        store = viewer.selections

        def save() -> Response:
            view = catalog.split(str(blob.get("split", "")))
            name = str(blob.get("name", ""))
            where, indices = blob.get("where"), blob.get("indices")
            if (where is None) == (indices is None):
                raise TaliConfigError("give either indices (tagged rows) or where (the current filter)")
            if where is not None:
                if not isinstance(where, str) or len(where) > 2000:
                    raise TaliConfigError("where must be a WHERE clause of at most 2000 characters")
                rows, read = catalog.filter(view.name, where, viewer.metrics_path(view))
                return JSONResponse(store.save(name, view, rows, where.strip() or None, read))
            if not isinstance(indices, list) or not all(
                isinstance(i, int) and not isinstance(i, bool) and 0 <= i < view.num_rows for i in indices
            ):
                raise TaliConfigError(f"indices must be a list of rows in 0..{view.num_rows - 1}")
            return JSONResponse(store.save(name, view, indices, None, view.num_rows))

        return await queries.run(save)

    async def list_selections(request: Request) -> Response:
        store = viewer.selections
        return JSONResponse({"enabled": store is not None, "selections": store.list() if store else []})

    async def favicon(request: Request) -> Response:
        return Response(status_code=204)

    routes = [
        Route("/", home),
        Route("/row/{split}/{index}", page),
        Route("/static/{name}", static),
        Route("/favicon.ico", favicon),
        Route("/api/splits", splits),
        Route("/api/row/{split}/{index}", on(reads, row)),
        Route("/api/window/{split}/{index}", on(decodes, window)),
        Route("/api/item/{item_idx}", on(reads, item)),
        Route("/api/search", on(queries, search)),
        Route("/api/filter", on(queries, filter_rows)),
        Route("/gallery/{split}", gallery),
        Route("/api/gallery", on(queries, gallery_api)),
        Route("/api/selection", save_selection, methods=["POST"]),
        Route("/api/selections", list_selections),
        Route("/media/{split}/{index}/thumb.png", on(decodes, thumbnail)),
        Route("/media/{split}/{index}/poster.png", on(decodes, poster)),
        Route("/media/{split}/{index}/video.mp4", on(reads, video)),
        Route("/media/{split}/{index}/image.png", on(decodes, image)),
        Route("/media/{split}/{index}/waveform.json", on(decodes, waveform)),
        Route("/media/{split}/{index}/spectrogram.png", on(decodes, spectrogram)),
        Route("/media/{split}/{index}/frame/{slot}.png", on(decodes, frame)),
        Route("/media/{split}/{index}/window.wav", on(decodes, window_audio)),
    ]
    middleware = [
        Middleware(RequestGuard, allowed_hosts=allowed_hosts, costly=_costly),
        Middleware(_SecurityHeaders),
    ]
    return Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={Exception: error, TaliError: error, 404: _not_found(JSONResponse)},
    )


#: Routes that run SQL or change state: they need the viewer's own page as their origin.
_COSTLY = ("/api/filter", "/api/search", "/api/gallery", "/api/selection")


def _costly(path: str) -> bool:
    return path.startswith(_COSTLY)


@dataclass(frozen=True)
class ViewLimits:
    """How much work the viewer takes on at once. Decodes: a window is 0.1-1 s of one core
    (measured on the sample's 30 s clips), so slots ~ cores; more wait in a queue (each at
    most ``wait_seconds``), the rest get 503 + Retry-After."""

    decode_slots: int = field(default_factory=lambda: max(1, min(4, os.cpu_count() or 1)))
    decode_queue: int = 32
    query_slots: int = 1
    query_queue: int = 4
    read_slots: int = 4
    read_queue: int = 64
    wait_seconds: float = 20.0


def _not_found(json_response: Any) -> Any:
    def handler(request: Any, exc: Any) -> Any:
        return json_response({"error": f"no such page: {request.url.path[:200]}"}, status_code=404)

    return handler


class _SecurityHeaders:
    """Adds the CSP and friends to every response (a plain ASGI wrapper: no body buffering)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *_HEADERS]}
            await send(message)

        await self.app(scope, receive, send=with_headers)
