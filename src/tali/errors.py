"""One exception hierarchy for everything ``tali`` raises about data.

Every data error carries *where* it happened (``item_idx``, ``field`` and,
when known, ``shard`` and ``row``) so a failure on row 731,902 of a week-long
run can be found again. Each class also inherits the builtin a caller would
naturally catch (``ValueError`` for bad content, ``KeyError`` for a missing
column), so generic handlers keep working.
"""

from __future__ import annotations

__all__ = [
    "TaliConfigError",
    "TaliDataError",
    "TaliDecodeError",
    "TaliError",
    "TaliImageError",
    "TaliMissingDependencyError",
    "TaliMissingStreamError",
    "TaliModelAssetError",
    "TaliProcessorError",
    "TaliQueryLimitError",
    "TaliSchemaError",
    "TaliSourceError",
    "TaliSubtitleError",
]


class TaliError(Exception):
    """Root of every error ``tali`` raises on purpose."""


class TaliConfigError(TaliError, ValueError):
    """A configuration value is out of its allowed set or range."""


class TaliQueryLimitError(TaliConfigError):
    """A user's SQL (``--where``, the viewer's filter) ran past its time, memory or result-size limit."""


class TaliSourceError(TaliError, OSError):
    """A data source (directory, file, Hub repo, URL) cannot be found or read."""


class TaliDataError(TaliError, ValueError):
    """A row's content is bad. Names the row and field it came from."""

    def __init__(
        self,
        message: str,
        *,
        item_idx: int | None = None,
        field: str | None = None,
        shard: str | None = None,
        row: int | None = None,
    ) -> None:
        self.message = message
        self.item_idx = item_idx
        self.field = field
        self.shard = shard
        self.row = row
        super().__init__(message)

    def with_location(self, *, shard: str | None = None, row: int | None = None) -> TaliDataError:
        """Fill in the shard and row once the caller that knows them catches this."""
        if shard is not None and self.shard is None:
            self.shard = shard
        if row is not None and self.row is None:
            self.row = row
        self.args = (str(self),)
        return self

    def __str__(self) -> str:
        where = [
            f"{name}={value}"
            for name, value in (
                ("item_idx", self.item_idx),
                ("field", self.field),
                ("shard", self.shard),
                ("row", self.row),
            )
            if value is not None
        ]
        return f"{self.message} [{', '.join(where)}]" if where else self.message

    def __reduce__(self):  # keep the location when crossing DataLoader worker processes
        return (
            _rebuild,
            (type(self), self.message, self.item_idx, self.field, self.shard, self.row),
        )


def _rebuild(cls, message, item_idx, field, shard, row):
    return cls(message, item_idx=item_idx, field=field, shard=shard, row=row)


class TaliSchemaError(TaliDataError, KeyError):
    """A column or struct field is missing, or has the wrong type or shape."""

    __str__ = TaliDataError.__str__  # KeyError would quote the message


class TaliDecodeError(TaliDataError):
    """Media bytes cannot be decoded (truncated, empty or garbage mp4)."""


class TaliMissingStreamError(TaliDecodeError):
    """The clip has no stream of the kind requested (e.g. audio from a silent mp4)."""


class TaliImageError(TaliDecodeError):
    """The Wikipedia image cannot be decoded, or exceeds the pixel limit."""


class TaliSubtitleError(TaliDataError):
    """Subtitle text is not a YAML mapping of timestamps to text."""


class TaliProcessorError(TaliDataError):
    """A decoded output cannot become model input (wrong dtype, size or sample rate)."""


class TaliMissingDependencyError(TaliError, ImportError):
    """An optional dependency is not installed; the message names the extra that installs it."""

    def __init__(self, message: str, *, extra: str, module: str | None = None) -> None:
        super().__init__(message, name=module)
        self.extra = extra

    def __reduce__(self):
        return (_rebuild_dependency, (type(self), str(self), self.extra, self.name))


def _rebuild_dependency(cls, message, extra, module):
    return cls(message, extra=extra, module=module)


class TaliModelAssetError(TaliSourceError):
    """Files a model processor needs (configs, vocabularies) cannot be found or loaded."""


class TaliStageError(TaliDataError):
    """A user stage of a :class:`~tali.pipeline.Pipeline` raised; ``field`` is ``stage:<name>``."""


class TaliLiveError(TaliSourceError):
    """A live source cannot be opened, or broke and was not (or could not be) reconnected."""


class TaliStreamStalledError(TaliLiveError, TimeoutError):
    """A live source sent nothing for longer than its read timeout."""
