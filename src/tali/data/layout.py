"""The split grammar: which parquet files of a repo or directory are a split's shards.

One set of rules for every source (local directory, Hub listing, fsspec glob) and
every tool. They follow the resolution ``datasets`` applies to a Hub repo (its
``DEFAULT_PATTERNS_SPLIT_IN_FILENAME`` / ``..._IN_DIR_NAME``, and the dataset
card's ``configs:`` block first), written as glob patterns so that the core
install needs no ``datasets``:

1. the card's ``configs: [{config_name: default, data_files: [{split, path}]}]``;
2. ``data/{split}-*.parquet`` (``push_to_hub``: ``data/train-00000-of-00600-e9123a82b71a4590.parquet``,
   or without the hash as newer versions write);
3. ``data/{split}/*.parquet``, ``{split}-*.parquet``, ``{split}/*.parquet``;
4. ``default/{split}/*.parquet``: the Hub's converter (``refs/convert/parquet``,
   ``default/train/0000.parquet``; a partly converted split is ``partial-train``).

Numbered shards (``-{i}-of-{n}``, any hash suffix) must be exactly ``0..n-1`` of
one ``n``: see :func:`check_complete`.
"""

from __future__ import annotations

import fnmatch
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import PurePosixPath

from tali.errors import TaliSourceError

__all__ = [
    "PATTERNS",
    "available_splits",
    "card_data_files",
    "check_complete",
    "match_split",
    "numbered",
    "split_of",
]

PATTERNS = (
    "data/{split}-*.parquet",
    "data/{split}/*.parquet",
    "{split}-*.parquet",
    "{split}/*.parquet",
    "default/{split}/*.parquet",
)

#: ``{prefix}-{i}-of-{n}[-{hash}].parquet``: the hash ``push_to_hub`` appended (16 hex chars).
_NUMBERED = re.compile(r"^(?P<prefix>.+?)-(?P<i>\d+)-of-(?P<n>\d+)(?P<hash>-[0-9A-Za-z]+)?\.parquet$")
_SPLIT_NAME = re.compile(r"^(?P<split>[A-Za-z0-9_.]+?)-\d+-of-\d+(?:-[0-9A-Za-z]+)?\.parquet$")
_CONTAINERS = frozenset({"", ".", "data", "default"})


def numbered(name: str) -> tuple[str, int, int] | None:
    """``(prefix, i, n)`` of a numbered shard file name, else ``None``."""
    m = _NUMBERED.match(PurePosixPath(name).name)
    return (m["prefix"], int(m["i"]), int(m["n"])) if m else None


def _hidden(path: str) -> bool:
    return any(part.startswith(".") for part in PurePosixPath(path).parts)


def split_of(relpath: str) -> str | None:
    """The split a shard belongs to, from its path inside the repo/directory: a split folder
    (``data/dev/x.parquet``, ``default/val/0000.parquet``) wins over the file's name, as in
    :func:`match_split`."""
    path = PurePosixPath(relpath)
    if path.suffix != ".parquet" or _hidden(relpath):
        return None
    parent = path.parent.name
    if parent not in _CONTAINERS:
        return parent
    m = _SPLIT_NAME.match(path.name)
    return m["split"] if m else None


def available_splits(relpaths: Iterable[str]) -> list[str]:
    """Split names present, from the shards' paths (both naming forms)."""
    return sorted({s for p in relpaths if (s := split_of(p)) is not None})


def match_split(
    relpaths: Iterable[str], split: str, card: Mapping[str, Sequence[str]] | None = None
) -> list[str]:
    """The split's shard paths, sorted: the card's patterns if it names the split, else the
    first default pattern that matches anything."""
    paths = sorted(p for p in relpaths if not _hidden(p) and p.endswith(".parquet"))
    patterns: Sequence[str] = card[split] if card and split in card else ()
    if patterns:
        found = sorted({p for p in paths for pat in patterns if fnmatch.fnmatchcase(p, pat.lstrip("/"))})
        if found:
            return found
    for pattern in PATTERNS:
        pat = pattern.format(split=split)
        found = [p for p in paths if fnmatch.fnmatchcase(p, pat) and "/" not in p[len(pat.split("*")[0]) :]]
        if found:
            return found
    return []


def card_data_files(card: str | Mapping[str, object]) -> dict[str, list[str]]:
    """``{split: [glob patterns]}`` of the default config of a dataset card: its README text
    (the YAML header parsed by ``huggingface_hub``) or the Hub's parsed ``cardData``
    (``{}`` when the card has no ``configs:`` block)."""
    if isinstance(card, Mapping):
        data: Mapping[str, object] = card
    else:
        from huggingface_hub import DatasetCard

        try:
            data = DatasetCard(card).data.to_dict()
        except Exception:  # noqa: BLE001 - a card we cannot parse falls back to the default patterns
            return {}
    configs = data.get("configs") or []
    if not isinstance(configs, list):
        return {}
    chosen = next((c for c in configs if isinstance(c, dict) and c.get("default")), None)
    chosen = chosen or next(
        (c for c in configs if isinstance(c, dict) and c.get("config_name") == "default"), None
    )
    if chosen is None and len(configs) == 1 and isinstance(configs[0], dict):
        chosen = configs[0]
    files = chosen.get("data_files") if isinstance(chosen, dict) else None
    out: dict[str, list[str]] = defaultdict(list)
    if isinstance(files, list):
        for entry in files:
            if isinstance(entry, dict) and isinstance(entry.get("split"), str):
                paths = entry.get("path")
                out[entry["split"]].extend(
                    [paths] if isinstance(paths, str) else [str(p) for p in paths or []]
                )
    elif isinstance(files, dict):
        for split, paths in files.items():
            out[str(split)].extend([paths] if isinstance(paths, str) else [str(p) for p in paths or []])
    return dict(out)


def check_complete(
    files: Sequence[str], *, deliberate: Callable[[str, set[str]], bool] | None = None
) -> None:
    """Raise :class:`TaliSourceError` listing the missing shards when the numbered shards of a
    split (``-{i}-of-{n}``, with or without a hash) are not exactly ``0..n-1`` of one ``n``.

    ``deliberate(parent, names)``: whether the shards present in ``parent`` were chosen on
    purpose (``tali download --split 'train[:5%]'``), so the missing ones are not an error."""
    groups: dict[tuple[str, str], dict[int, set[int]]] = defaultdict(lambda: defaultdict(set))
    width: dict[tuple[str, str], tuple[int, int]] = {}
    suffix: dict[tuple[str, str], set[str]] = defaultdict(set)
    present_names: dict[str, set[str]] = defaultdict(set)
    for f in files:
        path = PurePosixPath(str(f).replace("\\", "/"))
        parsed = _NUMBERED.match(path.name)
        if parsed:
            key = (str(path.parent), parsed["prefix"])
            groups[key][int(parsed["n"])].add(int(parsed["i"]))
            width[key] = (len(parsed["i"]), len(parsed["n"]))
            suffix[key].add(parsed["hash"] or "")
            present_names[str(path.parent)].add(path.name)
    for (parent, prefix), by_total in groups.items():
        if deliberate is not None and deliberate(parent, present_names[parent]):
            continue
        if len(by_total) > 1:
            raise TaliSourceError(
                f"{parent}: {prefix} shards from different writes are mixed "
                f"(-of-{', -of-'.join(str(n) for n in sorted(by_total))}); the split is incomplete"
            )
        ((total, present),) = by_total.items()
        missing = sorted(set(range(total)) - present)
        extra = sorted(i for i in present if i >= total)
        if missing or extra:
            wi, wn = width[(parent, prefix)]
            # push_to_hub gives every shard of a write one hash: the missing ones have it too
            tail = next(iter(suffix[(parent, prefix)])) if len(suffix[(parent, prefix)]) == 1 else "-*"
            names = [f"{prefix}-{i:0{wi}d}-of-{total:0{wn}d}{tail}.parquet" for i in missing[:10]]
            more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
            raise TaliSourceError(
                f"{parent}: split {prefix} is incomplete: {len(missing)} of {total} shards missing "
                f"({', '.join(names)}{more})" + (f"; unexpected shard numbers {extra[:10]}" if extra else "")
            )
