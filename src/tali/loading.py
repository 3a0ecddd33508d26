"""``tali.load``: one entry point from any source to a streaming or map-style dataset.

>>> stream = tali.load("Antreas/TALI", split="train[:5%]")             # Hub: download 5% of shards
>>> stream = tali.load("/data/TALI", split="val", streaming=True)        # local Hub-layout directory
>>> stream = tali.load("s3://bucket/TALI", split="train")                # fsspec: read in place
>>> dataset = tali.load("/data/TALI", split="test", streaming=False)     # map-style ``TaliDataset``

Sources, in the order they are recognised:

1. a list of files (local paths or fsspec URLs);
2. a URL with a scheme (``s3://``, ``https://``, ``memory://``, ``hf://``): read through
   fsspec without downloading, a row group at a time;
3. an existing local file or directory (Hub layout ``data/{split}-*.parquet``);
4. ``owner/name``: a Hub dataset repo, downloaded with :func:`tali.hub.download`.

Anything else, and a path-like string that exists nowhere (``"data/TALI"``, ``"./x"``,
``"a/b/c"``, ``"x.parquet"``), is a local-path :class:`~tali.errors.TaliSourceError`
naming the absolute path looked for; it is never sent to the Hub.

``split`` may slice shards (``"train[:5%]"``, ``"train[2:4]"``) for every source;
``shards`` picks shard indices or file names.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from tali.config import TaliConfig
from tali.data import layout
from tali.data.dataset import TaliDataset
from tali.data.footers import FileIdentity
from tali.data.sources import resolve_local_files
from tali.data.streaming import TaliStream
from tali.errors import TaliConfigError, TaliSourceError
from tali.hub import REPO_ID, SplitSpec, parse_split, sliced
from tali.schema import Modality, SubModality

__all__ = ["FsOpener", "load", "remote_splits", "resolve_files"]

_REPO_RE = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")


class FsOpener:
    """``path -> binary file`` on one fsspec filesystem; picklable into DataLoader workers."""

    def __init__(self, fs: Any) -> None:
        self.fs = fs

    def __call__(self, path: str) -> Any:
        # No read-ahead: pyarrow asks for exactly the column chunks it needs, and a block cache
        # (HfFileSystem's is 5 MB) turned each small column of a 170 MB row group into 5 MB.
        return self.fs.open(path, "rb", cache_type="none")

    def __repr__(self) -> str:
        return f"FsOpener({type(self.fs).__name__})"


def _slice(files: list[str], spec: SplitSpec, shards: Sequence[int | str] | None) -> list[str]:
    chosen = sliced(files, spec)
    if shards is None:
        return chosen
    out = []
    names = {Path(f).name: f for f in files}
    for shard in shards:
        if isinstance(shard, int):
            if not -len(files) <= shard < len(files):
                raise TaliConfigError(
                    f"shard index {shard} out of range: split {spec.split!r} has {len(files)} shards"
                )
            out.append(files[shard])
        elif Path(str(shard)).name in names:
            out.append(names[Path(str(shard)).name])
        else:
            raise TaliConfigError(f"no shard named {shard!r} in split {spec.split!r}")
    return out


def remote_splits(
    source: str, *, storage_options: dict[str, Any] | None = None
) -> dict[str, tuple[list[str], FsOpener, list[FileIdentity]]]:
    """Every split of a Hub id (``owner/name``, optionally ``@revision``) or fsspec URL, from
    one listing: ``{split: (files, opener, identities)}`` by the one split grammar."""
    url = source if "://" in source else f"hf://datasets/{source}"
    fs, root, rel, card = _listing(url, storage_options)
    out = {}
    for split in sorted(set(layout.available_splits(rel)) | set(card)):
        chosen = layout.match_split(rel, split, card)
        if chosen:
            layout.check_complete(chosen)
            files = [f"{root}/{p}" for p in chosen]
            out[split] = (files, FsOpener(fs), [_identity(f, rel[p]) for f, p in zip(files, chosen)])
    if not out:
        raise TaliSourceError(f"no parquet shards under {url}")
    return out


def _listing(
    url: str, storage_options: dict[str, Any] | None
) -> tuple[Any, str, dict[str, dict[str, Any]], dict[str, list[str]]]:
    """``(fs, root, {repo path: info}, card patterns)``: one recursive listing (+ the card)."""
    import fsspec

    try:
        fs, root = fsspec.core.url_to_fs(url, **(storage_options or {}))
    except (ImportError, ValueError) as exc:
        raise TaliSourceError(f"cannot open {url}: {exc}") from exc
    root = root.rstrip("/")
    try:
        # a fresh listing: HfFileSystem's cache of an earlier find() lists one file the second time
        fs.invalidate_cache(root)
        listing = fs.find(root, detail=True)
    except (OSError, ValueError) as exc:
        raise TaliSourceError(f"cannot list {url}: {_first_line(exc)}") from exc
    rel = {p[len(root) + 1 :]: info for p, info in listing.items() if p.startswith(root + "/")}
    card: dict[str, list[str]] = {}
    if "README.md" in rel:
        try:
            card = layout.card_data_files(fs.cat_file(f"{root}/README.md").decode("utf-8", "replace"))
        except (OSError, ValueError):
            card = {}
    return fs, root, rel, card


def _fsspec_files(
    url: str, split: str, storage_options: dict[str, Any] | None
) -> tuple[list[str], FsOpener, list[FileIdentity]]:
    """The split's shards under an fsspec URL, by the one split grammar (:mod:`tali.data.layout`),
    with each file's identity (size, ETag / blob id) from the same listing: one recursive
    listing (plus the card, if there is one), no request per shard."""
    import fsspec

    if url.endswith(".parquet"):
        try:
            fs, root = fsspec.core.url_to_fs(url, **(storage_options or {}))
        except (ImportError, ValueError) as exc:
            raise TaliSourceError(f"cannot open {url}: {exc}") from exc
        return [root], FsOpener(fs), [_identity(root, fs.info(root))]
    fs, root, rel, card = _listing(url, storage_options)
    chosen = layout.match_split(rel, split, card)
    if not chosen:
        there = sorted(set(layout.available_splits(rel)) | set(card))
        raise TaliSourceError(
            f"no parquet shards for split {split!r} under {url} (looked for data/{split}-*.parquet"
            + (f"; splits there: {', '.join(there)})" if there else ")")
        )
    layout.check_complete(chosen)
    files = [f"{root}/{p}" for p in chosen]
    return files, FsOpener(fs), [_identity(f, rel[p]) for f, p in zip(files, chosen)]


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _identity(path: str, info: dict[str, Any]) -> FileIdentity:
    tag = info.get("blob_id") or info.get("ETag") or info.get("etag") or info.get("mtime") or ""
    lfs = info.get("lfs")
    if isinstance(lfs, dict) and lfs.get("sha256"):
        tag = lfs["sha256"]
    return FileIdentity(path, int(info.get("size") or 0), str(tag))


def resolve_files(
    source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] = REPO_ID, **options: Any
) -> tuple[list[str], FsOpener | None]:
    """The shard files of ``split`` in ``source`` and how to open them (``None``: local);
    the options of :func:`resolve_source`, which also gives remote files' identities."""
    files, opener, _ = resolve_source(source, **options)
    return files, opener


def resolve_source(
    source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] = REPO_ID,
    *,
    split: str = "train",
    shards: Sequence[int | str] | None = None,
    revision: str | None = None,
    download: bool = False,
    cache_dir: str | os.PathLike[str] | None = None,
    local_dir: str | os.PathLike[str] | None = None,
    endpoint: str | None = None,
    token: str | bool | None = None,
    storage_options: dict[str, Any] | None = None,
    max_workers: int = 8,
    progress: bool = True,
) -> tuple[list[str], FsOpener | None, list[FileIdentity] | None]:
    """``(files, opener, identities)``: :func:`resolve_files` plus each remote file's
    identity from the listing (``None`` for local files: they are stat'ed)."""
    spec = parse_split(split)
    if not isinstance(source, str | os.PathLike):
        items = [str(s) for s in source]
        if not items:
            raise TaliSourceError("an empty list of files is not a source")
        if any("://" in s for s in items):
            import fsspec

            fs, _ = fsspec.core.url_to_fs(items[0], **(storage_options or {}))
            return [fs._strip_protocol(s) for s in items], FsOpener(fs), None
        return resolve_local_files(items), None, None
    text = os.fspath(source)
    if "://" in text:
        files, opener, idents = _fsspec_files(text, spec.split, storage_options)
        return _sliced(files, opener, idents, spec, shards)
    if Path(text).exists():
        return _slice(resolve_local_files(text, spec.split), spec, shards), None, None
    if _looks_local(text) or not _REPO_RE.match(text):
        raise TaliSourceError(_no_local_path(text, spec.split))
    if _REPO_RE.match(text):
        from tali.hub_access import offline

        # Streaming reads in place (HTTP range requests); offline, only what an earlier
        # download left in the cache can be read, so that is what is served.
        if not download and not offline():
            url = f"hf://datasets/{text}@{revision}" if revision else f"hf://datasets/{text}"
            options = dict(storage_options or {})
            if endpoint:
                options.setdefault("endpoint", endpoint)
            if token is not None:
                options.setdefault("token", token)
            try:
                files, opener, idents = _fsspec_files(url, spec.split, options)
            except TaliSourceError as exc:
                raise TaliSourceError(
                    f"{exc} ({text!r} is not a local path either: {_looked_for(text)})"
                ) from exc
            return _sliced(files, opener, idents, spec, shards)
        from tali.hub import download as hub_download

        try:
            report = hub_download(
                text,
                split=split,
                shards=shards,
                revision=revision,
                cache_dir=cache_dir,
                local_dir=local_dir,
                endpoint=endpoint,
                token=token,
                max_workers=max_workers,
                progress=progress,
            )
        except TaliSourceError as exc:
            # The string was also a possible local path: say so, in case that was meant.
            raise TaliSourceError(
                f"{exc} ({text!r} is not a local path either: {_looked_for(text)})"
            ) from exc
        return report.files, None, None
    raise AssertionError("unreachable")


def _sliced(
    files: list[str],
    opener: FsOpener,
    idents: list[FileIdentity],
    spec: SplitSpec,
    shards: Sequence[int | str] | None,
) -> tuple[list[str], FsOpener, list[FileIdentity]]:
    chosen = _slice(files, spec, shards)
    by_path = dict(zip(files, idents))
    return chosen, opener, [by_path[f] for f in chosen]


#: First path parts that are directories, not Hub owners, in practice.
_LOCAL_FIRST_PARTS = frozenset({"data", "datasets", "dataset", "tmp", "home", "mnt", "scratch", "work"})


def _looks_local(text: str) -> bool:
    """A string that means a path even though it has the ``owner/name`` shape:
    ``./x``, ``~/x``, ``x/y.parquet``, ``data/TALI``, or ``x/y`` where ``x`` exists here."""
    if text.startswith((".", "/", "~")) or text.endswith(".parquet") or os.sep == "\\" and "\\" in text:
        return True
    first = text.split("/", 1)[0]
    return first.lower() in _LOCAL_FIRST_PARTS or ("/" in text and Path(first).is_dir())


def _looked_for(text: str) -> str:
    path = Path(text).expanduser()
    absolute = path if path.is_absolute() else Path.cwd() / path
    parent = absolute.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    return f"looked for {absolute}; the nearest existing directory is {parent}"


def _no_local_path(text: str, split: str) -> str:
    return (
        f"no such local path {text!r} ({_looked_for(text)}). A source is a directory in the Hub layout "
        f"(DIR/data/{split}-*.parquet), a parquet file, a URL (s3://, hf://...), or a Hub dataset id "
        f"such as {REPO_ID!r}"
    )


def load(
    source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] = REPO_ID,
    *,
    split: str = "train",
    streaming: bool = True,
    modalities: Iterable[str | Modality | SubModality] | None = None,
    config: TaliConfig | None = None,
    shards: Sequence[int | str] | None = None,
    revision: str | None = None,
    download: bool = False,
    cache_dir: str | os.PathLike[str] | None = None,
    local_dir: str | os.PathLike[str] | None = None,
    endpoint: str | None = None,
    token: str | bool | None = None,
    storage_options: dict[str, Any] | None = None,
    max_workers: int = 8,
    progress: bool = True,
    **dataset_kwargs: Any,
) -> TaliStream | TaliDataset:
    """A :class:`~tali.data.streaming.TaliStream` (``streaming=True``) or a map-style
    :class:`~tali.data.dataset.TaliDataset` over ``split`` of ``source``.

    ``modalities`` overrides ``config.modalities``. A Hub id or URL is read in place
    (``hf://``, HTTP range requests: row groups when streaming, a row's own pages for
    map-style access where the layout allows), nothing downloaded; ``download=True``
    downloads the selected shards first (:func:`tali.hub.download`: a download over
    20 GB warns with its size first), and with ``HF_HUB_OFFLINE=1`` what an earlier
    download left is read. Footers are read once per machine and cached on disk
    (:mod:`tali.data.footers`). Other keyword arguments go to the dataset
    (``shuffle``, ``buffer_size``, ``rank``, ``world_size``, ``equal_per_rank``,
    ``item_ids``, ``on_error``, ``processors``, ``cache``...).
    """
    config = config or TaliConfig()
    if modalities is not None:
        config = config.replace(modalities=tuple(modalities))
    files, opener, identities = resolve_source(
        source,
        split=split,
        shards=shards,
        revision=revision,
        download=download,
        cache_dir=cache_dir,
        local_dir=local_dir,
        endpoint=endpoint,
        token=token,
        storage_options=storage_options,
        max_workers=max_workers,
        progress=progress,
    )
    split_name = parse_split(split).split
    if streaming:
        return TaliStream(
            files, config=config, split=split_name, opener=opener, identities=identities, **dataset_kwargs
        )
    for name in ("shuffle", "buffer_size", "rank", "world_size", "equal_per_rank", "cache"):
        if name in dataset_kwargs:
            raise TaliConfigError(
                f"{name}= applies to streaming=True; for map-style data use a sampler "
                f"(tali.data.sampler.TaliDistributedSampler) or the dataset's own options"
            )
    return TaliDataset(
        split=split_name, config=config, files=files, opener=opener, identities=identities, **dataset_kwargs
    )
