"""Download TALI shards from the Hugging Face Hub: only what is asked for, verified, once.

Built on ``huggingface_hub``: its Hub API client (repo info, file listing with
LFS sizes and sha256), its HTTP transfer (``http_get``, which resumes dropped
connections with ``Range`` requests) and its cache layout (blobs + snapshot
links, so ``datasets`` and ``hf`` see the files). On top we add:

- split and shard selection (``"train[:5%]"``, ``"val[2:4]"``, explicit shards);
- resume across processes: a run killed mid-shard continues the partial file
  (``huggingface_hub`` 2.x writes per-process temporary files, huggingface/huggingface_hub#4228,
  so it restarts a killed download from zero);
- a pinned commit: the branch is resolved once, then every file is asked for
  at that commit, which is what lets a second call make no file request at all;
- retries with exponential backoff and jitter on 429, 5xx and dropped
  connections around each file (the client's own retries cover only some calls);
- verification against the Hub's LFS metadata: size always, sha256 once per
  blob (remembered in a small marker keyed by sha256, size and mtime, since
  re-hashing 2 TB per run is not an option); a mismatching shard is deleted
  and fetched again, never read.

Offline and unreachable (bounded time, never a minute of retries):

- ``HF_HUB_OFFLINE=1``: no request at all; the split is served from what an
  earlier download left in the cache (``refs/<revision>`` -> snapshot), or a
  :class:`~tali.errors.TaliSourceError` says what was looked for, at once.
- a Hub that refuses the connection (or whose name does not resolve) fails on
  the first metadata call, without retries; one that accepts but does not answer
  fails after ``timeout`` seconds (default :data:`METADATA_TIMEOUT`, 10 s) per
  metadata call. Only answers that say "busy" (429, 5xx) are retried, and
  dropped connections while file bytes are being transferred.
"""

from __future__ import annotations

import hashlib
import math
import os
import random
import re
import time
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar

from tali.data import layout
from tali.data.sources import record_selection
from tali.errors import TaliConfigError, TaliSourceError
from tali.hub_access import _bounded, endpoint_of, offline

__all__ = [
    "DownloadReport",
    "HubFile",
    "LargeDownloadWarning",
    "SplitSpec",
    "download",
    "list_split_files",
    "parse_split",
    "select_shards",
]

REPO_ID = "Antreas/TALI"
#: A download larger than this says how large before it starts (TALI's train split is ~1.8 TB).
LARGE_DOWNLOAD_BYTES = 20 * 1024**3


class LargeDownloadWarning(UserWarning):
    """A download of more than :data:`LARGE_DOWNLOAD_BYTES` is about to start."""


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


#: Seconds a Hub metadata call (repo info, file list) may take before it counts as unreachable.
METADATA_TIMEOUT = 10.0
RETRY_STATUS = (408, 429, 500, 502, 503, 504)
Verify = Literal["size", "sha256"]
T = TypeVar("T")


@dataclass(frozen=True)
class HubFile:
    """A shard as the Hub lists it: repo path, size in bytes, LFS sha256 (hex) if known."""

    path: str
    size: int
    sha256: str | None
    etag: str = ""  # the git blob id: with size, the file's identity for cached footers


@dataclass(frozen=True)
class SplitSpec:
    """``train``, ``train[:5%]``, ``train[2:4]``: a split and a slice of its shards."""

    split: str
    start: str | None = None
    stop: str | None = None

    def apply(self, n: int) -> slice:
        """The shards of ``n`` this spec keeps. Percentages must lie in [-100%, 100%]
        (``train[:150%]`` is refused, as in HF ``datasets``); shard indices past
        the end are clamped, as Python slices are."""

        def bound(text: str | None, default: int) -> int:
            if text is None or text == "":
                return default
            if text.endswith("%"):
                value = float(text[:-1])
                if not -100.0 <= value <= 100.0:
                    raise TaliConfigError(
                        f"split {self!s}: {text} is outside -100%..100%; "
                        f"a percentage slices the split's shards (e.g. '{self.split}[:50%]')"
                    )
                return math.ceil(n * value / 100.0) if value >= 0 else math.floor(n * value / 100.0)
            try:
                return int(text)
            except ValueError:
                raise TaliConfigError(
                    f"split {self!s}: {text!r} is not a shard index; write whole numbers "
                    f"('{self.split}[2:4]') or percentages ('{self.split}[:5%]')"
                ) from None

        start, stop = bound(self.start, 0), bound(self.stop, n)
        # "train[:1%]" of 20 shards is one shard, never zero.
        if self.stop and self.stop.endswith("%") and stop == start and n:
            stop = start + 1
        return slice(start, stop)

    def __str__(self) -> str:
        if self.start is None and self.stop is None:
            return self.split
        return f"{self.split}[{self.start or ''}:{self.stop or ''}]"


_SPLIT_RE = re.compile(r"^(?P<split>[A-Za-z0-9_\-]+)(?:\[(?P<start>-?[\d.]*%?):(?P<stop>-?[\d.]*%?)\])?$")


def parse_split(spec: str) -> SplitSpec:
    match = _SPLIT_RE.match(spec.strip())
    if match is None:
        raise TaliConfigError(
            f"split {spec!r} is not understood; write e.g. 'train', 'train[:5%]', 'train[10%:20%]' or 'val[0:2]'"
        )
    parsed = SplitSpec(match["split"], match["start"], match["stop"])
    parsed.apply(1)  # refuse bad bounds now, before any listing or download
    return parsed


def sliced(items: Sequence[T], spec: SplitSpec) -> list[T]:
    """``items[spec]``; a slice that keeps nothing is an error naming how many there were."""
    chosen = list(items)[spec.apply(len(items))]
    if items and not chosen:
        raise TaliConfigError(f"split {spec!s} selects none of the split's {len(items)} shards")
    return chosen


def _api(endpoint: str | None, token: str | bool | None):
    from huggingface_hub import HfApi

    return HfApi(endpoint=endpoint or os.environ.get("HF_ENDPOINT") or None, token=token)


class _Unreachable(TaliSourceError):
    """The connection could not be made at all: retrying will not help."""


def _retrying(what: str, call, *, max_retries: int, base_delay: float, fail_fast: bool = False):
    """``call()`` with exponential backoff and full jitter on transient failures.

    ``fail_fast`` (metadata calls): a connection that cannot be made or a call that
    times out is raised at once instead of retried, so an unreachable Hub costs at most
    one timeout; 429/5xx answers are still retried.
    """
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    transient = _transport_errors()

    for attempt in range(max_retries + 1):
        try:
            return call()
        except OfflineModeIsEnabled as exc:
            raise TaliSourceError(f"{what}: HF_HUB_OFFLINE is set, so the Hub is not asked") from exc
        except HfHubHTTPError as exc:
            status = exc.response.status_code if exc.response is not None else None
            if status not in RETRY_STATUS or attempt == max_retries:
                raise TaliSourceError(f"{what}: HTTP {status}: {_one_line(exc)}") from exc
            retry_after = exc.response.headers.get("Retry-After") if exc.response is not None else None
            delay = float(retry_after) if retry_after and retry_after.isdigit() else base_delay * 2**attempt
        except transient as exc:
            if fail_fast or attempt == max_retries:
                raise _Unreachable(f"{what}: {type(exc).__name__}: {exc}") from exc
            delay = base_delay * 2**attempt
        time.sleep(random.uniform(0.5, 1.0) * delay)
    raise AssertionError("unreachable")


def _one_line(exc: BaseException) -> str:
    """The client's multi-line HTTP error as one line, without its boilerplate link."""
    lines = [line.strip() for line in str(exc).splitlines()]
    return "; ".join(line for line in lines if line and not line.startswith("For more information"))


def _transport_errors() -> tuple[type[BaseException], ...]:
    """Dropped connections and timeouts of whichever HTTP client this huggingface_hub uses."""
    errors: list[type[BaseException]] = [ConnectionError, TimeoutError]
    for module in ("httpx2", "httpx"):
        try:
            errors.append(__import__(module).TransportError)
        except (ImportError, AttributeError):
            pass
    return tuple(errors)


def list_split_files(
    repo_id: str = REPO_ID,
    split: str = "train",
    *,
    revision: str | None = None,
    endpoint: str | None = None,
    token: str | bool | None = None,
    max_retries: int = 5,
    base_delay: float = 1.0,
    timeout: float | None = METADATA_TIMEOUT,
) -> tuple[str, list[HubFile]]:
    """The commit ``revision`` points at, and the split's shards there (sorted).

    Raises :class:`~tali.errors.TaliSourceError` at once when offline, and after at
    most ``timeout`` seconds per call when the Hub cannot be reached.
    """
    if offline():
        raise TaliSourceError(
            f"HF_HUB_OFFLINE is set: cannot list {repo_id}@{revision or 'main'} on the Hub "
            f"(unset it, or use shards already downloaded)"
        )
    api = _api(endpoint, token)
    try:
        info = _retrying(
            f"repo info of {repo_id}@{revision or 'main'}",
            lambda: _bounded(
                lambda: api.repo_info(repo_id, repo_type="dataset", revision=revision, timeout=timeout),
                None if timeout is None else timeout + 1.0,
            ),
            max_retries=max_retries,
            base_delay=base_delay,
            fail_fast=True,
        )
        commit = info.sha
        card = getattr(info, "card_data", None)
        entries = _retrying(
            f"file list of {repo_id}@{commit}",
            lambda: _bounded(
                lambda: list(
                    api.list_repo_tree(repo_id, recursive=True, repo_type="dataset", revision=commit)
                ),
                timeout,
            ),
            max_retries=max_retries,
            base_delay=base_delay,
            fail_fast=True,
        )
    except _Unreachable as exc:
        raise TaliSourceError(
            f"the Hub at {endpoint_of(endpoint)} is unreachable ({exc}); check the network or "
            f"HF_ENDPOINT, or set HF_HUB_OFFLINE=1 to use shards already downloaded"
        ) from exc.__cause__
    by_path = {e.path: e for e in entries if getattr(e, "size", None) is not None and hasattr(e, "path")}
    card_dict = card.to_dict() if card is not None and hasattr(card, "to_dict") else card
    patterns = layout.card_data_files(card_dict if isinstance(card_dict, dict) else {})
    chosen = layout.match_split(by_path, split, patterns)
    files = [
        HubFile(
            p,
            int(by_path[p].size),
            by_path[p].lfs.sha256 if getattr(by_path[p], "lfs", None) else None,
            etag=str(getattr(by_path[p], "blob_id", "") or ""),
        )
        for p in chosen
    ]
    if not files:
        there = sorted(set(layout.available_splits(by_path)) | set(patterns))
        raise TaliSourceError(
            f"{repo_id}@{commit} has no shards for split {split!r} (looked for "
            f"{', '.join(p.format(split=split) for p in layout.PATTERNS[:2])}"
            + (f"; splits there: {', '.join(there)})" if there else ")")
        )
    layout.check_complete([f.path for f in files])
    return commit, files


def cached_split_files(
    repo_id: str,
    split: str,
    *,
    revision: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    local_dir: str | os.PathLike[str] | None = None,
) -> tuple[str | None, list[str], list[str]]:
    """``(commit, files, looked_in)``: the split's shards an earlier :func:`download` left
    on disk, found without any request (``HF_HUB_OFFLINE``)."""
    if local_dir is not None:
        base = Path(local_dir)
        rel = [p.relative_to(base).as_posix() for p in base.rglob("*.parquet")]
        files = [str(base / p) for p in layout.match_split(rel, split)]
        return None, files, [str(base / "data" / f"{split}-*.parquet")]
    from huggingface_hub import constants

    # huggingface_hub's repo_folder_name, without importing its HTTP stack.
    storage = Path(cache_dir or constants.HF_HUB_CACHE) / ("datasets--" + repo_id.replace("/", "--"))
    ref = storage / "refs" / (revision or "main")
    commit = revision if revision and re.fullmatch(r"[0-9a-f]{40}", revision) else None
    if commit is None:
        try:
            commit = ref.read_text().strip()
        except OSError:
            return None, [], [str(ref)]
    snapshot = storage / "snapshots" / commit
    rel = [p.relative_to(snapshot).as_posix() for p in snapshot.rglob("*.parquet") if p.exists()]
    files = [str(snapshot / p) for p in layout.match_split(rel, split)]
    return commit, files, [str(ref), str(snapshot / "data" / f"{split}-*.parquet")]


def select_shards(
    files: Sequence[HubFile], spec: SplitSpec, shards: Sequence[int | str] | None = None
) -> list[HubFile]:
    """Apply the split's slice, then an explicit list of shard indices or file names."""
    chosen = sliced(files, spec)
    if shards is None:
        return chosen
    by_name = {f.path: f for f in files} | {Path(f.path).name: f for f in files}
    out = []
    for shard in shards:
        if isinstance(shard, int):
            if not -len(files) <= shard < len(files):
                raise TaliConfigError(
                    f"shard index {shard} out of range: split {spec.split!r} has {len(files)} shards"
                )
            out.append(files[shard])
        elif shard in by_name:
            out.append(by_name[shard])
        else:
            raise TaliConfigError(f"no shard named {shard!r} in split {spec.split!r}")
    return out


def _marker_dir() -> Path:
    root = os.environ.get("TALI_CACHE_DIR") or str(
        Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "tali"
    )
    return Path(root) / "verified"


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def verify_file(local: str, expected: HubFile, *, verify: Verify = "sha256") -> str | None:
    """``None`` when ``local`` matches the Hub's size (and sha256); else what is wrong."""
    real = os.path.realpath(local)
    try:
        stat = os.stat(real)
    except FileNotFoundError:
        return "missing"
    if stat.st_size != expected.size:
        return f"size {stat.st_size} != {expected.size}"
    if verify != "sha256" or not expected.sha256:
        return None
    marker = _marker_dir() / expected.sha256
    stamp = f"{stat.st_size} {stat.st_mtime_ns} {real}"
    try:
        if marker.read_text() == stamp:
            return None
    except OSError:
        pass
    actual = _sha256(real)
    if actual != expected.sha256:
        return f"sha256 {actual[:12]}... != {expected.sha256[:12]}..."
    marker.parent.mkdir(parents=True, exist_ok=True)
    tmp = marker.with_name(f".{marker.name}.{os.getpid()}")
    tmp.write_text(stamp)
    os.replace(tmp, marker)
    return None


@dataclass
class DownloadReport:
    commit: str
    files: list[str]
    refetched: list[str]
    #: bytes actually transferred by this call (0 when everything was already here)
    downloaded_bytes: int = 0


def _destination(repo_id: str, f: HubFile, commit: str, cache_dir, local_dir) -> tuple[Path, Path | None]:
    """``(file to write, pointer to link to it)``: the blob and snapshot link of the HF
    cache layout (so ``huggingface_hub`` and ``datasets`` find the files too), or the
    path inside ``local_dir``."""
    if local_dir is not None:
        return Path(local_dir) / f.path, None
    from huggingface_hub import constants
    from huggingface_hub.file_download import repo_folder_name

    storage = Path(cache_dir or constants.HF_HUB_CACHE) / repo_folder_name(
        repo_id=repo_id, repo_type="dataset"
    )
    blob = storage / "blobs" / (f.sha256 or f"{commit}-{f.path.replace('/', '--')}")
    return blob, storage / "snapshots" / commit / f.path


def _link(blob: Path, pointer: Path) -> None:
    pointer.parent.mkdir(parents=True, exist_ok=True)
    tmp = pointer.with_name(f".{pointer.name}.{os.getpid()}.link")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(os.path.relpath(blob, pointer.parent))
    os.replace(tmp, pointer)


def _supported(function, **options) -> dict:
    """The keyword arguments this huggingface_hub version's ``function`` accepts
    (tested with 2.4; ``retry_on_errors`` and ``tqdm_class`` are recent additions)."""
    import inspect

    names = inspect.signature(function).parameters
    return {k: v for k, v in options.items() if k in names}


def _transfer(url_of, dest: Path, f: HubFile, *, token, advance) -> int:
    """Bytes of ``f`` into ``dest``, continuing a partial file left by an earlier
    (possibly killed) process with an HTTP Range request. Returns bytes transferred.

    ``huggingface_hub`` 2.x resumes only inside one process (its temporary
    files are unique per process), so a multi-hour download killed at 90% would
    start over; the transfer itself is still its ``http_get``.
    """
    from filelock import FileLock
    from huggingface_hub.file_download import get_hf_file_metadata, http_get
    from tqdm.auto import tqdm

    class _Forward(tqdm):  # the client's per-chunk progress, into our one bar
        def __init__(self, *args, **kwargs):
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)

        def update(self, n=1):
            advance(n or 0)

    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".tali-incomplete")
    with FileLock(str(dest) + ".tali-lock"):
        if dest.exists():  # another process finished it while we waited
            return 0
        url = url_of(f.path)
        meta = get_hf_file_metadata(
            url, token=token, **_supported(get_hf_file_metadata, retry_on_errors=True)
        )
        if meta.size is not None and meta.size != f.size:
            raise TaliSourceError(f"{f.path}: the Hub lists {f.size} bytes but serves {meta.size}")
        done = partial.stat().st_size if partial.exists() else 0
        if done > f.size:
            partial.unlink()
            done = 0
        with open(partial, "r+b" if done else "wb") as fh:
            fh.seek(done)
            advance(done)
            http_get(
                meta.location,
                fh,
                resume_size=done,
                expected_size=f.size,
                displayed_filename=Path(f.path).name,
                **_supported(http_get, tqdm_class=_Forward),
            )
            fh.truncate()
        os.replace(partial, dest)
        return f.size - done


def download(
    repo_id: str = REPO_ID,
    *,
    split: str = "train",
    shards: Sequence[int | str] | None = None,
    revision: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    local_dir: str | os.PathLike[str] | None = None,
    max_workers: int = 8,
    endpoint: str | None = None,
    token: str | bool | None = None,
    verify: Verify = "sha256",
    progress: bool = True,
    max_retries: int = 5,
    base_delay: float = 1.0,
    timeout: float | None = METADATA_TIMEOUT,
) -> DownloadReport:
    """Download the selected shards of one split in parallel; return their local paths.

    Files land in the Hugging Face cache (``cache_dir``, default ``HF_HUB_CACHE``)
    in its own blob/snapshot layout, or under ``local_dir``. Shards already
    present and verified cost no file request; a partial file left by a killed
    run is continued, not restarted. ``split`` may slice shards (``"train[:5%]"``);
    ``shards`` picks indices or names.

    With ``HF_HUB_OFFLINE=1`` no request is made: the shards come from what an earlier
    download left (no new verification), or the error lists where they were looked for.
    An unreachable Hub fails within ``timeout`` seconds (see the module docstring).
    """
    if verify not in ("size", "sha256"):
        raise TaliConfigError(f"verify={verify!r} is not allowed; choose one of 'size', 'sha256'")
    spec = parse_split(split)
    if offline():  # before importing the HTTP client: offline answers in milliseconds
        return _offline_report(repo_id, spec, shards, revision, cache_dir, local_dir)
    from huggingface_hub import hf_hub_url

    commit, files = list_split_files(
        repo_id,
        spec.split,
        revision=revision,
        endpoint=endpoint,
        token=token,
        max_retries=max_retries,
        base_delay=base_delay,
        timeout=timeout,
    )
    wanted = select_shards(files, spec, shards)
    total = sum(f.size for f in wanted)
    if total > LARGE_DOWNLOAD_BYTES:
        warnings.warn(
            f"downloading {human_bytes(total)} ({len(wanted)} shards) of {repo_id} split {spec!s}; "
            f"tali.load(..., download=False) streams it instead (HTTP range requests, nothing stored)",
            LargeDownloadWarning,
            stacklevel=2,
        )
    base = endpoint or os.environ.get("HF_ENDPOINT") or None
    refetched: list[str] = []
    transferred = [0]

    def url_of(path: str) -> str:
        return hf_hub_url(repo_id, path, repo_type="dataset", revision=commit, endpoint=base)

    def one(f: HubFile, advance) -> str:
        dest, pointer = _destination(repo_id, f, commit, cache_dir, local_dir)
        final = pointer or dest
        for attempt in range(2):
            if not dest.exists():
                transferred[0] += _retrying(
                    f"download of {repo_id}/{f.path}",
                    lambda: _transfer(url_of, dest, f, token=token, advance=advance),
                    max_retries=max_retries,
                    base_delay=base_delay,
                )
            if pointer is not None and not pointer.exists():
                _link(dest, pointer)
            problem = verify_file(str(final), f, verify=verify)
            if problem is None:
                return str(final)
            if attempt == 0:  # corrupt or partial: remove it so it cannot be read, fetch again
                refetched.append(f.path)
                dest.unlink(missing_ok=True)
                continue
            raise TaliSourceError(f"{repo_id}/{f.path} is still corrupt after a fresh download: {problem}")
        raise AssertionError("unreachable")

    results: dict[str, str] = {}
    with (
        _progress(progress, sum(f.size for f in wanted), len(wanted)) as advance,
        ThreadPoolExecutor(max_workers=max(1, max_workers)) as pool,
    ):
        futures = {pool.submit(one, f, advance): f for f in wanted}
        for future in as_completed(futures):
            results[futures[future].path] = future.result()
    if (revision or "main") != commit and local_dir is None:
        _write_ref(repo_id, cache_dir, revision or "main", commit)  # what offline lookups read
    if local_dir is not None:
        # A chosen subset of a split's shards is complete as chosen: readers that refuse a
        # split with missing -of-N shards (a killed write) accept these (data/sources.py).
        by_dir: dict[Path, list[str]] = {}
        for f in wanted:
            by_dir.setdefault((Path(local_dir) / f.path).parent, []).append(Path(f.path).name)
        for directory, names in by_dir.items():
            record_selection(directory, names)
    return DownloadReport(
        commit=commit,
        files=[results[f.path] for f in wanted],
        refetched=refetched,
        downloaded_bytes=transferred[0],
    )


def _offline_report(repo_id, spec: SplitSpec, shards, revision, cache_dir, local_dir) -> DownloadReport:
    commit, found, looked = cached_split_files(
        repo_id, spec.split, revision=revision, cache_dir=cache_dir, local_dir=local_dir
    )
    if not found:
        raise TaliSourceError(
            f"HF_HUB_OFFLINE is set and no shards of {repo_id}@{revision or 'main'} split "
            f"{spec.split!r} were downloaded before (looked in {', '.join(looked)}); unset "
            f"HF_HUB_OFFLINE, or run `tali download {repo_id} --split {spec!s}` where the Hub is reachable"
        )
    files = [
        HubFile(Path(f).relative_to(Path(f).parents[1]).as_posix(), os.stat(f).st_size, None) for f in found
    ]
    chosen = select_shards(files, spec, shards)
    by_path = {h.path: f for h, f in zip(files, found, strict=True)}
    return DownloadReport(commit=commit or "local", files=[by_path[h.path] for h in chosen], refetched=[])


def _write_ref(repo_id: str, cache_dir, revision: str, commit: str) -> None:
    """``refs/<branch>`` -> commit, as ``huggingface_hub`` records it, for offline lookups."""
    from huggingface_hub import constants
    from huggingface_hub.file_download import repo_folder_name

    ref = (
        Path(cache_dir or constants.HF_HUB_CACHE)
        / repo_folder_name(repo_id=repo_id, repo_type="dataset")
        / "refs"
        / revision
    )
    ref.parent.mkdir(parents=True, exist_ok=True)
    from tali.atomic import write_text

    write_text(ref, commit)


class _progress:
    """A rich progress bar over bytes, advanced per finished shard (quiet when disabled)."""

    def __init__(self, enabled: bool, total: int, count: int) -> None:
        self.enabled, self.total, self.count = enabled, total, count
        self._progress = None

    def __enter__(self):
        if not self.enabled:
            return lambda n: None
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

        self._progress = Progress(
            TextColumn(f"{self.count} shards"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            transient=False,
        )
        self._progress.__enter__()
        task = self._progress.add_task("download", total=self.total)
        return lambda n: self._progress.update(task, advance=n)  # rich's update is thread-safe

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)
