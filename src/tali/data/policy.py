"""One bad-sample policy for every loader: ``raise``, ``skip`` or ``substitute``.

- ``raise``: the typed error propagates, naming item, field, shard and row.
- ``skip``: the bad row is replaced by the next good one (batch sizes hold);
  the replacement sample carries a record of every row it stands in for.
- ``substitute``: a placeholder of the same shapes, all zeros, with
  ``valid=False``, stands in; it carries the record too.

One rule in both loaders: under ``skip`` and ``substitute`` no bad row ends
a run: a row that cannot be decoded *and* a row group that cannot be read
(a corrupt page, a truncated shard: every row in it is bad) are recorded and
stepped over, however long the run of bad rows, unless the user sets
``max_consecutive_bad`` (same meaning in both loaders). A run ends only when
every row a request can reach is bad.

Records travel *inside samples*, so they cross DataLoader workers and ranks
with the data itself; :class:`ErrorReport` totals them from batches in the
training loop, where ``yielded + skipped == read`` holds by construction.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import torch

from tali.config import TaliConfig
from tali.errors import TaliConfigError, TaliDataError, TaliSourceError

__all__ = [
    "ErrorReport",
    "OnError",
    "SkipRecord",
    "check_max_consecutive_bad",
    "check_on_error",
    "placeholder_sample",
    "record_of",
]

OnError = Literal["raise", "skip", "substitute"]
ERRORS_KEY = "errors"
VALID_KEY = "valid"


def check_on_error(value: str) -> OnError:
    if value not in get_args(OnError):
        raise TaliConfigError(f"on_error={value!r} is not allowed; choose one of {get_args(OnError)}")
    return value  # type: ignore[return-value]


def check_max_consecutive_bad(value: int | None) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise TaliConfigError(f"max_consecutive_bad must be None or an int >= 0, got {value!r}")
    return value


@dataclass(frozen=True)
class SkipRecord:
    """A row that did not become a sample, and why."""

    item_idx: int | None
    shard: str | None
    row: int | None
    field: str | None
    error: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def record_of(exc: TaliDataError, *, shard: str | None = None, row: int | None = None) -> SkipRecord:
    return SkipRecord(
        item_idx=exc.item_idx,
        shard=exc.shard or (Path(shard).name if shard else None),
        row=exc.row if exc.row is not None else row,
        field=exc.field,
        error=type(exc).__name__,
        message=exc.message,
    )


@dataclass
class ErrorReport:
    """Totals over batches: rows read, samples yielded, rows skipped and why."""

    read: int = 0
    yielded: int = 0
    substituted: int = 0
    skipped: list[SkipRecord] = field(default_factory=list)

    def update(self, batch: Mapping[str, Any]) -> None:
        """Account for one collated batch from a loader with ``on_error != "raise"``."""
        records = batch.get(ERRORS_KEY)
        valid = batch.get(VALID_KEY)
        if records is None:
            raise TaliConfigError(
                "batch has no 'errors' entry: was the loader built with on_error='skip' or 'substitute'?"
            )
        size = len(records)
        self.yielded += size
        for per_sample in records:
            for rec in per_sample:
                self.skipped.append(SkipRecord(**rec))
        if valid is not None:
            self.substituted += int((~torch.as_tensor(valid)).sum())
        # A substituted sample stands for its own bad row: read once, yielded once.
        self.read = self.yielded + len(self.skipped) - self.substituted

    @property
    def by_error(self) -> Counter[str]:
        return Counter(r.error for r in self.skipped)

    def to_dict(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "yielded": self.yielded,
            "substituted": self.substituted,
            "skipped": len(self.skipped),
            "by_error": dict(self.by_error),
            "rows": [r.to_dict() for r in self.skipped],
        }


def placeholder_sample(config: TaliConfig, *, key: int, epoch: int, item_idx: int | None) -> dict[str, Any]:
    """A sample with the shapes and dtypes a good one would have, all zeros/empty, built
    by the same modality readers' placeholders (:mod:`tali.sample`) as a good sample's
    values. A pipeline's augment and process stages then run on it
    (:meth:`tali.pipeline.Pipeline.finish_placeholder`), so it gains the same keys."""
    # Imported here: the readers time themselves (tali.observe), whose monitor reads this module.
    from tali.sample.layout import placeholder_values

    out: dict[str, Any] = {
        "item_idx": item_idx if isinstance(item_idx, int) else -1,
        "key": key,
        "epoch": epoch,
    }
    out.update(placeholder_values(config))
    return out


def mark(sample: dict[str, Any], *, valid: bool, records: list[SkipRecord]) -> dict[str, Any]:
    """Attach the policy's bookkeeping keys to a sample (only when the policy is not raise)."""
    sample[VALID_KEY] = valid
    sample[ERRORS_KEY] = [r.to_dict() for r in records]
    return sample


def apply_policy(
    on_error: OnError,
    attempt: Callable[[], dict[str, Any]],
    *,
    config: TaliConfig,
    key: int,
    epoch: int,
    item_idx: int | None | Callable[[], int | None],
    shard: str | None,
    row: int | None,
) -> tuple[dict[str, Any] | None, SkipRecord | None]:
    """Run ``attempt``; under ``skip`` return ``(None, record)`` for a bad row,
    under ``substitute`` a placeholder and the record. ``raise`` re-raises located.
    ``item_idx`` may be a callable (known only once ``attempt`` read the row)."""
    try:
        return attempt(), None
    except TaliDataError as exc:
        exc.with_location(shard=Path(shard).name if shard else None, row=row)
        if on_error == "raise":
            raise
        record = record_of(exc)
    except TaliSourceError as exc:  # an unreadable row group: its rows are bad rows
        if on_error == "raise":
            raise
        record = SkipRecord(
            item_idx=None,
            shard=Path(shard).name if shard else None,
            row=row,
            field=None,
            error=type(exc).__name__,
            message=str(exc)[:500],
        )
    if callable(item_idx):
        item_idx = item_idx()
    if record.item_idx is None and item_idx is not None:
        record = SkipRecord(**{**record.to_dict(), "item_idx": item_idx})
    if on_error == "skip":
        return None, record
    return placeholder_sample(config, key=key, epoch=epoch, item_idx=record.item_idx), record
