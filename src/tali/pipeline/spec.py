"""Pipelines declared in YAML or TOML: built-in stages by name, user stages as ``module:callable``.

.. code-block:: yaml

    config:                       # TaliConfig fields (optional; defaults otherwise)
      modalities: [video, audio, youtube_subtitle_text]
      window: {seconds: 3.0}
    stages:
      - decode
      - augment: {time: {speed: [0.9, 1.1]}, spatial: {flip_p: 0.5}}
      - process: {youtube_content_audio: whisper_log_mel, youtube_content_video: clip_pixels}
      - spec_augment: {time_masks: 2}
      - stage: mypkg.stages:drop_short     # fn(sample, ctx, **args) -> sample
        name: drop_short
        args: {min_chars: 10}

Everything is checked when built: an unknown stage, argument or value raises
:class:`~tali.errors.TaliConfigError` naming the stage, the argument and what
is allowed. A file is untrusted text (read under the subtitle reader's budgets,
non-finite numbers refused) except for its ``module:callable`` stages, which
import, so run, their module: a pipeline file is trusted like code (docs/PIPELINES.md).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tali.augment import AudioAugment, Augment, SpatialAugment, SpecAugment, TextAugment, TimeAugment
from tali.config import TaliConfig, build_dataclass, refuse_non_finite
from tali.decode.subtitles import load_bounded_yaml
from tali.errors import TaliConfigError
from tali.pipeline.pipeline import Pipeline
from tali.pipeline.stages import AugmentStage, Process, SpecAugmentStage, UserStage

__all__ = ["BUILTIN_STAGES", "PROCESSORS", "config_from_dict", "pipeline_from_dict", "pipeline_from_file"]

BUILTIN_STAGES = ("decode", "augment", "process", "spec_augment")
PROCESSORS = ("clip_pixels", "whisper_log_mel")
_AUGMENT_PARTS = {
    "time": TimeAugment,
    "spatial": SpatialAugment,
    "audio": AudioAugment,
    "spec": SpecAugment,
    "text": TextAugment,
}


_build = build_dataclass


def config_from_dict(data: Mapping[str, Any] | None) -> TaliConfig:
    """A :class:`TaliConfig` from plain values (the ``config:`` section of a pipeline file):
    :meth:`TaliConfig.from_dict`, kept under this name for existing callers."""
    return TaliConfig.from_dict(data, where="config")


def _augment(args: Any, where: str) -> Augment:
    if args == "default":  # the recommended set (each part named alone turns on only itself)
        return Augment.default()
    args = {} if args is None else args
    if not isinstance(args, Mapping):
        raise TaliConfigError(f"{where} must be a mapping, got {args!r}")
    for key in args:
        if key not in _AUGMENT_PARTS:
            raise TaliConfigError(
                f"{where}: argument {key!r} is not allowed; choose from {', '.join(_AUGMENT_PARTS)}"
            )
    parts: dict[str, Any] = {}
    for key, cls in _AUGMENT_PARTS.items():
        if key in args:
            value = args[key]
            parts[key] = (
                None if value is False or value is None else _build(cls, value or {}, f"{where}.{key}")
            )
    return Augment(**parts)


def _process(args: Any, where: str) -> Process:
    from tali.processors import ClipPixels, ProcessorSet, WhisperLogMel
    from tali.schema import SubModality

    if not isinstance(args, Mapping) or not args:
        raise TaliConfigError(
            f"{where} must map sub-modalities to one of {', '.join(PROCESSORS)}, got {args!r}"
        )
    subs = [s.value for s in SubModality]
    built: dict[str, Any] = {}
    for sub, spec in args.items():
        if sub not in subs:
            raise TaliConfigError(f"{where}: {sub!r} is not a sub-modality; choose from {', '.join(subs)}")
        kwargs: dict[str, Any] = {}
        if isinstance(spec, str):
            name = spec
        elif isinstance(spec, Mapping) and len(spec) == 1:
            ((name, kwargs),) = spec.items()
        else:
            raise TaliConfigError(
                f"{where}.{sub}: write a processor name or {{name: {{args}}}}, got {spec!r}"
            )
        factory = {"clip_pixels": ClipPixels, "whisper_log_mel": WhisperLogMel}.get(str(name))
        if factory is None:
            raise TaliConfigError(
                f"{where}.{sub}: processor {name!r} is not built in; choose from {', '.join(PROCESSORS)}"
            )
        try:
            built[sub] = factory(**(kwargs or {}))
        except TypeError as exc:
            raise TaliConfigError(f"{where}.{sub}: {exc}") from None
    return Process(ProcessorSet(built))


def _stage(item: Any, index: int) -> Any:
    where = f"stages[{index}]"
    if isinstance(item, str):
        if item == "decode":
            return "decode"
        if item in BUILTIN_STAGES:
            return _stage({item: None}, index)
        if ":" in item:
            return UserStage(item)
        raise TaliConfigError(
            f"{where}: stage {item!r} is not built in; choose from {', '.join(BUILTIN_STAGES)} "
            "or write a user stage as 'module:callable'"
        )
    if not isinstance(item, Mapping):
        raise TaliConfigError(
            f"{where}: a stage is a name, {{name: args}} or {{stage: 'module:callable', args: ...}}"
        )
    if "stage" in item:
        extra = set(item) - {"stage", "name", "args"}
        if extra:
            raise TaliConfigError(
                f"{where}: key {min(extra)!r} is not allowed; choose from stage, name, args"
            )
        target, args = item["stage"], item.get("args") or {}
        if target in BUILTIN_STAGES:
            return _stage({target: args}, index)
        if not isinstance(args, Mapping):
            raise TaliConfigError(f"{where}: args of {target!r} must be a mapping, got {args!r}")
        stage = UserStage(target, name=item.get("name"), **args)
        return (stage.name, stage)
    if len(item) != 1:
        raise TaliConfigError(f"{where}: write one stage per list item, got {sorted(item)}")
    ((name, args),) = item.items()
    where = f"stage {name!r} ({where})"
    if name == "decode":
        if args:
            raise TaliConfigError(f"{where}: takes no arguments (the config: section says what is decoded)")
        return "decode"
    if name == "augment":
        return AugmentStage(_augment(args, where))
    if name == "spec_augment":
        return SpecAugmentStage(
            Augment(time=None, spatial=None, audio=None, spec=_build(SpecAugment, args, where))
        )
    if name == "process":
        return _process(args, where)
    raise TaliConfigError(
        f"{where}: stage {name!r} is not built in; choose from {', '.join(BUILTIN_STAGES)} "
        "or write {stage: 'module:callable', args: {...}}"
    )


def pipeline_from_dict(data: Mapping[str, Any], *, config: TaliConfig | None = None) -> Pipeline:
    """Build and check a pipeline from plain values (``config`` overrides the file's)."""
    if not isinstance(data, Mapping):
        raise TaliConfigError(f"a pipeline spec is a mapping with 'stages', got {type(data).__name__}")
    refuse_non_finite(data, "pipeline spec")
    extra = set(data) - {"config", "stages"}
    if extra:
        raise TaliConfigError(f"pipeline spec: key {min(extra)!r} is not allowed; choose from config, stages")
    stages = data.get("stages", ["decode"])
    if not isinstance(stages, list) or not stages:
        raise TaliConfigError("pipeline spec: 'stages' must be a non-empty list")
    return Pipeline(
        config or config_from_dict(data.get("config")), [_stage(s, i) for i, s in enumerate(stages)]
    )


#: Budgets for a pipeline or config file: the subtitle reader's, sized for hand-written
#: files (a real pipeline file is under 2 KB and 200 nodes).
MAX_SPEC_BYTES = 1_000_000
MAX_SPEC_NODES = 100_000
MAX_SPEC_ALIASES = 1_000
MAX_SPEC_DEPTH = 32


def read_spec_text(path: str | os.PathLike[str]) -> Any:
    """Plain values of a ``.yaml``/``.yml``/``.toml`` file, bounded in bytes, nodes (aliases
    expanded), alias uses and nesting; any failure a :class:`TaliConfigError` naming the file."""
    path = Path(path)
    if path.suffix not in (".toml", ".yaml", ".yml"):
        raise TaliConfigError(f"{path}: pipeline files are .yaml, .yml or .toml, got {path.suffix!r}")
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_SPEC_BYTES + 1)
    except OSError as exc:
        raise TaliConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(raw) > MAX_SPEC_BYTES:
        raise TaliConfigError(f"{path}: over {MAX_SPEC_BYTES} bytes (the pipeline file limit)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TaliConfigError(f"{path}: not UTF-8: {exc}") from None

    def error(message: str) -> TaliConfigError:
        return TaliConfigError(f"{path}: {message}")

    if path.suffix in (".yaml", ".yml"):
        return load_bounded_yaml(
            text,
            error=error,
            max_bytes=MAX_SPEC_BYTES,
            max_nodes=MAX_SPEC_NODES,
            max_aliases=MAX_SPEC_ALIASES,
            max_depth=MAX_SPEC_DEPTH,
        )
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise error(f"cannot parse: {exc}") from None
    except RecursionError:  # tomllib parses nested arrays and inline tables recursively
        raise error(
            f"nested deeper than Python's recursion limit (the depth limit is {MAX_SPEC_DEPTH})"
        ) from None
    _check_depth(data, error)
    return data


def _check_depth(data: Any, error: Any) -> None:
    stack: list[tuple[Any, int, str]] = [(data, 1, "")]
    nodes = 0
    while stack:
        item, depth, where = stack.pop()
        nodes += 1
        if depth > MAX_SPEC_DEPTH:
            raise error(
                f"nested deeper than {MAX_SPEC_DEPTH} levels (the depth limit) (at {where.lstrip('.')})"
            )
        if nodes > MAX_SPEC_NODES:
            raise error(f"over {MAX_SPEC_NODES} values (the node limit)")
        if isinstance(item, Mapping):
            stack.extend((v, depth + 1, f"{where}.{k}") for k, v in item.items())
        elif isinstance(item, list):
            stack.extend((v, depth + 1, f"{where}[{i}]") for i, v in enumerate(item))


def pipeline_from_file(path: str | os.PathLike[str], *, config: TaliConfig | None = None) -> Pipeline:
    """A pipeline from a ``.yaml``/``.yml`` or ``.toml`` file (read with :func:`read_spec_text`)."""
    data = read_spec_text(path)
    try:
        return pipeline_from_dict(data, config=config)
    except TaliConfigError as exc:
        raise TaliConfigError(f"{path}: {exc}") from None
