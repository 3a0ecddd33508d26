"""The TALI row schema and the sub-modalities a user can ask for.

This module is the one place that spells TALI column names. Everything else
refers to :class:`Column` members, so a renamed upstream column is a one-line
change here.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

import pyarrow as pa

from tali.errors import TaliConfigError

__all__ = [
    "IMAGE_TYPE",
    "OPTIONAL_COLUMNS",
    "TALI_SCHEMA",
    "WIT_FEATURES_TYPE",
    "Column",
    "ImageField",
    "Modality",
    "SubModality",
    "WitField",
    "columns_for",
    "foreign_shard",
    "parse_submodalities",
    "require_columns",
    "schema_matches",
]


class Column(str, enum.Enum):
    """Top-level columns of a TALI parquet row."""

    IMAGE = "image"
    IMAGE_URL = "image_url"
    ITEM_IDX = "item_idx"
    WIT_FEATURES = "wit_features"
    WIT_IDX = "wit_idx"
    YOUTUBE_TITLE_TEXT = "youtube_title_text"
    YOUTUBE_DESCRIPTION_TEXT = "youtube_description_text"
    YOUTUBE_VIDEO_CONTENT = "youtube_video_content"
    YOUTUBE_VIDEO_STARTING_TIME = "youtube_video_starting_time"
    YOUTUBE_SUBTITLE_TEXT = "youtube_subtitle_text"
    YOUTUBE_VIDEO_SIZE = "youtube_video_size"
    YOUTUBE_VIDEO_FILE_PATH = "youtube_video_file_path"
    # Not in the published shards; used when a dataset carries real thumbnails.
    YOUTUBE_THUMBNAIL = "youtube_thumbnail"

    def __str__(self) -> str:
        return self.value


class WitField(str, enum.Enum):
    """Fields of the ``wit_features`` struct: parallel lists, one entry per language."""

    LANGUAGE = "language"
    PAGE_URL = "page_url"
    PAGE_TITLE = "page_title"
    SECTION_TITLE = "section_title"
    HIERARCHICAL_SECTION_TITLE = "hierarchical_section_title"
    CAPTION_REFERENCE_DESCRIPTION = "caption_reference_description"
    CAPTION_ALT_TEXT_DESCRIPTION = "caption_alt_text_description"
    CAPTION_TITLE_AND_REFERENCE_DESCRIPTION = "caption_title_and_reference_description"
    CONTEXT_PAGE_DESCRIPTION = "context_page_description"
    CONTEXT_SECTION_DESCRIPTION = "context_section_description"
    ATTRIBUTION_PASSES_LANG_ID = "attribution_passes_lang_id"
    IS_MAIN_IMAGE = "is_main_image"
    PAGE_CHANGED_RECENTLY = "page_changed_recently"

    def __str__(self) -> str:
        return self.value


class ImageField(str, enum.Enum):
    """Fields of the HF ``Image`` feature as stored in parquet."""

    BYTES = "bytes"
    PATH = "path"

    def __str__(self) -> str:
        return self.value


_BOOL_WIT_FIELDS = frozenset(
    {WitField.ATTRIBUTION_PASSES_LANG_ID, WitField.IS_MAIN_IMAGE, WitField.PAGE_CHANGED_RECENTLY}
)
_WIT_TYPES: dict[WitField, pa.DataType] = {
    f: (pa.bool_() if f in _BOOL_WIT_FIELDS else pa.string()) for f in WitField
}

#: ``wit_features``: a struct of parallel lists (HF ``Sequence`` of a dict).
WIT_FEATURES_TYPE = pa.struct([pa.field(str(name), pa.list_(dtype)) for name, dtype in _WIT_TYPES.items()])

#: The HF ``Image`` feature's storage type.
IMAGE_TYPE = pa.struct([pa.field("bytes", pa.binary()), pa.field("path", pa.string())])

TALI_SCHEMA = pa.schema(
    [
        pa.field(str(Column.IMAGE), IMAGE_TYPE),
        pa.field(str(Column.IMAGE_URL), pa.string()),
        pa.field(str(Column.ITEM_IDX), pa.int64()),
        pa.field(str(Column.WIT_FEATURES), WIT_FEATURES_TYPE),
        pa.field(str(Column.WIT_IDX), pa.int64()),
        pa.field(str(Column.YOUTUBE_TITLE_TEXT), pa.string()),
        pa.field(str(Column.YOUTUBE_DESCRIPTION_TEXT), pa.string()),
        pa.field(str(Column.YOUTUBE_VIDEO_CONTENT), pa.binary()),
        pa.field(str(Column.YOUTUBE_VIDEO_STARTING_TIME), pa.string()),
        pa.field(str(Column.YOUTUBE_SUBTITLE_TEXT), pa.string()),
        pa.field(str(Column.YOUTUBE_VIDEO_SIZE), pa.int64()),
        pa.field(str(Column.YOUTUBE_VIDEO_FILE_PATH), pa.string()),
    ]
)
"""The exact Arrow schema of a published TALI shard."""

#: Columns a reader may meet but that the published shards do not carry.
OPTIONAL_COLUMNS: frozenset[Column] = frozenset({Column.YOUTUBE_THUMBNAIL})


class Modality(str, enum.Enum):
    IMAGE = "image"
    TEXT = "text"
    AUDIO = "audio"
    VIDEO = "video"


class SubModality(str, enum.Enum):
    """What a sample can contain. The value is the key in a sample dict."""

    WIKIPEDIA_CAPTION_IMAGE = "wikipedia_caption_image"
    YOUTUBE_RANDOM_VIDEO_FRAME = "youtube_random_video_frame"
    YOUTUBE_THUMBNAIL_IMAGE = "youtube_thumbnail_image"
    WIKIPEDIA_CAPTION_TEXT = "wikipedia_caption_text"
    WIKIPEDIA_TITLE_TEXT = "wikipedia_title_text"
    WIKIPEDIA_MAIN_BODY_TEXT = "wikipedia_main_body_text"
    YOUTUBE_SUBTITLE_TEXT = "youtube_subtitle_text"
    YOUTUBE_DESCRIPTION_TEXT = "youtube_description_text"
    YOUTUBE_TITLE_TEXT = "youtube_title_text"
    YOUTUBE_CONTENT_AUDIO = "youtube_content_audio"
    YOUTUBE_CONTENT_VIDEO = "youtube_content_video"

    def __str__(self) -> str:
        return self.value

    @property
    def modality(self) -> Modality:
        return _MODALITY_OF[self]

    @property
    def needs_clip(self) -> bool:
        """True when producing this output means opening the mp4."""
        return self in _CLIP_SUBMODALITIES

    @classmethod
    def of_modality(cls, modality: Modality | str) -> tuple[SubModality, ...]:
        modality = Modality(modality)
        return tuple(s for s in cls if s.modality is modality)


_MODALITY_OF: dict[SubModality, Modality] = {
    SubModality.WIKIPEDIA_CAPTION_IMAGE: Modality.IMAGE,
    SubModality.YOUTUBE_RANDOM_VIDEO_FRAME: Modality.IMAGE,
    SubModality.YOUTUBE_THUMBNAIL_IMAGE: Modality.IMAGE,
    SubModality.WIKIPEDIA_CAPTION_TEXT: Modality.TEXT,
    SubModality.WIKIPEDIA_TITLE_TEXT: Modality.TEXT,
    SubModality.WIKIPEDIA_MAIN_BODY_TEXT: Modality.TEXT,
    SubModality.YOUTUBE_SUBTITLE_TEXT: Modality.TEXT,
    SubModality.YOUTUBE_DESCRIPTION_TEXT: Modality.TEXT,
    SubModality.YOUTUBE_TITLE_TEXT: Modality.TEXT,
    SubModality.YOUTUBE_CONTENT_AUDIO: Modality.AUDIO,
    SubModality.YOUTUBE_CONTENT_VIDEO: Modality.VIDEO,
}

_CLIP_SUBMODALITIES = frozenset(
    {
        SubModality.YOUTUBE_RANDOM_VIDEO_FRAME,
        SubModality.YOUTUBE_THUMBNAIL_IMAGE,
        SubModality.YOUTUBE_CONTENT_AUDIO,
        SubModality.YOUTUBE_CONTENT_VIDEO,
    }
)

# Columns each sub-modality reads. The window start, item id and clip length are
# needed by every clip-based output, so they appear wherever the clip does.
_CLIP_COLUMNS = (Column.YOUTUBE_VIDEO_CONTENT,)
_COLUMNS_OF: dict[SubModality, tuple[Column, ...]] = {
    SubModality.WIKIPEDIA_CAPTION_IMAGE: (Column.IMAGE,),
    SubModality.YOUTUBE_RANDOM_VIDEO_FRAME: _CLIP_COLUMNS,
    SubModality.YOUTUBE_THUMBNAIL_IMAGE: _CLIP_COLUMNS,
    SubModality.WIKIPEDIA_CAPTION_TEXT: (Column.WIT_FEATURES,),
    SubModality.WIKIPEDIA_TITLE_TEXT: (Column.WIT_FEATURES,),
    SubModality.WIKIPEDIA_MAIN_BODY_TEXT: (Column.WIT_FEATURES,),
    # Subtitles are cut to the clip window, whose length comes from the clip.
    SubModality.YOUTUBE_SUBTITLE_TEXT: (
        Column.YOUTUBE_SUBTITLE_TEXT,
        Column.YOUTUBE_VIDEO_STARTING_TIME,
    ),
    SubModality.YOUTUBE_DESCRIPTION_TEXT: (Column.YOUTUBE_DESCRIPTION_TEXT,),
    SubModality.YOUTUBE_TITLE_TEXT: (Column.YOUTUBE_TITLE_TEXT,),
    SubModality.YOUTUBE_CONTENT_AUDIO: _CLIP_COLUMNS,
    SubModality.YOUTUBE_CONTENT_VIDEO: _CLIP_COLUMNS,
}

#: Always read: every sample names its row.
_ALWAYS = (Column.ITEM_IDX,)


def parse_submodalities(
    names: Iterable[SubModality | Modality | str] | None,
) -> tuple[SubModality, ...]:
    """Normalise a user's list of sub-modalities or modalities, keeping enum order.

    ``None`` means every sub-modality; a modality name (``"image"``) expands to
    its sub-modalities.
    """
    if names is None:
        return tuple(SubModality)
    if isinstance(names, str):
        names = [names]
    chosen: set[SubModality] = set()
    for name in names:
        value = name.value if isinstance(name, enum.Enum) else str(name)
        if value in Modality._value2member_map_:
            chosen.update(SubModality.of_modality(value))
        elif value in SubModality._value2member_map_:
            chosen.add(SubModality(value))
        else:
            allowed = ", ".join([m.value for m in Modality] + [s.value for s in SubModality])
            raise TaliConfigError(f"unknown sub-modality {value!r}; expected one of: {allowed}")
    if not chosen:
        raise TaliConfigError("at least one sub-modality must be requested")
    return tuple(s for s in SubModality if s in chosen)


def columns_for(submodalities: Iterable[SubModality], available: Iterable[str] | None = None) -> list[str]:
    """The parquet columns needed to produce ``submodalities``, in schema order.

    ``available`` is the shard's column names; optional columns (a real
    thumbnail) are read only when the shard has them.
    """
    subs = tuple(submodalities)
    wanted: set[Column] = set(_ALWAYS)
    for sub in subs:
        wanted.update(_COLUMNS_OF[sub])
    if SubModality.YOUTUBE_THUMBNAIL_IMAGE in subs:
        wanted.add(Column.YOUTUBE_THUMBNAIL)
    if any(sub.needs_clip for sub in subs):
        wanted.add(Column.YOUTUBE_VIDEO_STARTING_TIME)
    names = set(available) if available is not None else None
    ordered = [c for c in Column if c in wanted]
    return [
        str(c)
        for c in ordered
        if (names is None and c not in OPTIONAL_COLUMNS) or (names is not None and str(c) in names)
    ]


def _listed(names: Iterable[str], most: int = 6) -> str:
    names = list(names)
    return ", ".join(names[:most]) + (f", ... ({len(names)} in all)" if len(names) > most else "")


def foreign_shard(names: Iterable[str], needed: Iterable[str] | None = None) -> str | None:
    """Why a parquet file with these columns is not a TALI shard at all (``None``: it is one,
    perhaps a partial one). With ``needed`` (the columns a tool reads), a file holding none
    of them is foreign; without, one lacking ``item_idx`` or most TALI columns is. Used to
    give one error instead of one per row."""
    have = list(names)
    present = [n for n in TALI_SCHEMA.names if n in have]
    if needed is not None:
        if any(n in have for n in needed):
            return None
    elif str(Column.ITEM_IDX) in have and 2 * len(present) >= len(TALI_SCHEMA.names):
        return None
    missing = [n for n in TALI_SCHEMA.names if n not in have]
    return (
        f"it has {len(present)} of the {len(TALI_SCHEMA.names)} TALI columns (missing: {_listed(missing)}; "
        f"its columns: {_listed(have) or 'none'})"
    )


def require_columns(shard: str, available: Iterable[str], needed: Iterable[str], *, purpose: str) -> None:
    """Raise :class:`~tali.errors.TaliSchemaError` naming ``shard`` when it lacks a needed column."""
    from tali.errors import TaliSchemaError

    have = list(available)
    missing = [n for n in needed if n not in have]
    if not missing:
        return
    name = shard.rsplit("/", 1)[-1]
    why = foreign_shard(have)
    if why is not None:
        raise TaliSchemaError(f"{name} is not a TALI shard: {why}", field=missing[0], shard=name)
    raise TaliSchemaError(
        f"{name} has no {_listed(missing)} column(s), which {purpose} needs", field=missing[0], shard=name
    )


def schema_matches(schema: pa.Schema) -> bool:
    """True when ``schema`` has exactly TALI's columns and types (metadata aside): what a
    tool that writes TALI shards (filter, prepare) checks before copying a source."""
    return schema.remove_metadata().equals(TALI_SCHEMA)
