"""``Pipeline``: choose -> decode -> augment -> process -> collate, as named stages.

The default loader is one instance: ``Pipeline.default(config, processors)``
is ``[decode]`` (+ ``[process]``), which is exactly what ``TaliDataset`` and
``TaliStream`` run when given no pipeline. A user composes their own:

>>> pipe = Pipeline(config, ["decode", AugmentStage(Augment()), ("clean", UserStage("mypkg:clean"))])
>>> pipe = pipe.insert(UserStage("mypkg:tag", label="x"), after="decode").drop("clean")

The window choice (``choose=``) and the frame choice (``plan=``, a
replacement for :func:`tali.window.plan_frames`) are slots, not stages: they
run inside decode, before any frame is decoded. An ``augment`` stage with a time augmentation
supplies it (frames, audio and subtitles are then cut from the perturbed window).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from tali.augment import Augment
from tali.collation import collate as default_collate
from tali.config import TaliConfig
from tali.errors import TaliConfigError, TaliDataError, TaliStageError
from tali.pipeline.stages import AugmentStage, Decode, Process, SpecAugmentStage, StageContext, UserStage
from tali.transform import FramePlanner, TaliTransform, WindowChooser, default_choose
from tali.window import seed_key

__all__ = ["UNREAD_ROW", "Pipeline", "StageLike", "resolve_pipeline"]

StageLike = Any  # "decode" | a stage object | (name, callable) | callable(sample, ctx)


class _UnreadRow(Mapping[str, Any]):
    """The row of a sample served from a :class:`~tali.data.cache.SampleCache`: it was
    not read, so a stage after decode that needs it must say so loudly."""

    def __getitem__(self, key: str) -> Any:
        raise TaliConfigError(
            f"a stage after decode read row[{key!r}], but this sample came from the SampleCache "
            "(the row was not read); run that stage without a cache, or inside decode"
        )

    def __iter__(self) -> Any:
        return iter(())

    def __len__(self) -> int:
        return 0

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        return self[key]

    def __reduce__(self) -> str:
        return "UNREAD_ROW"


UNREAD_ROW = _UnreadRow()


def _ref(obj: Any) -> str:
    owner = getattr(obj, "__self__", None)
    if owner is not None and hasattr(owner, "to_dict"):
        return f"{type(owner).__module__}:{type(owner).__qualname__}.{obj.__name__}:{owner.to_dict()}"
    return f"{getattr(obj, '__module__', '?')}:{getattr(obj, '__qualname__', repr(obj))}"


class Pipeline:
    """Named stages run in order on one row; picklable (it travels into DataLoader workers)."""

    def __init__(
        self,
        config: TaliConfig | None = None,
        stages: Iterable[StageLike] = ("decode",),
        *,
        choose: WindowChooser | None = None,
        plan: FramePlanner | None = None,
        durations: Mapping[int, float] | None = None,
    ) -> None:
        self.config = config or TaliConfig()
        if not isinstance(self.config, TaliConfig):
            raise TaliConfigError(f"Pipeline config must be a TaliConfig, got {type(self.config).__name__}")
        self.durations = durations
        self._choose = choose
        self._plan = plan
        named: list[tuple[str, Any]] = []
        for item in stages:
            named.append(self._named(item))
        names = [n for n, _ in named]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise TaliConfigError(
                f"Pipeline: stage names must be unique, {dupes} appear twice (pass (name, stage))"
            )
        decodes = [i for i, (_, s) in enumerate(named) if isinstance(s, Decode) or s == "decode"]
        if len(decodes) != 1:
            raise TaliConfigError(f"Pipeline needs exactly one 'decode' stage, got {len(decodes)} in {names}")
        augments = [s for _, s in named if isinstance(s, AugmentStage)]
        if len(augments) > 1:
            raise TaliConfigError("Pipeline: at most one 'augment' stage")
        self.augment: Augment | None = augments[0].augment if augments else None
        if self.augment is not None:
            self.augment.check(self.config)
            if choose is not None and self.augment.time is not None:
                raise TaliConfigError(
                    "Pipeline: choose= and an augment stage with a time augmentation both choose the window; "
                    "give one (Augment(time=None) keeps your choose)"
                )
        self.decode_index = decodes[0]
        named[self.decode_index] = ("decode", Decode(self._transform()))
        self.stages: list[tuple[str, Any]] = named

    # -- construction ---------------------------------------------------------------------------

    @classmethod
    def default(
        cls,
        config: TaliConfig | None = None,
        processors: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> Pipeline:
        """What the loaders run without ``pipeline=``: decode, then the processors if any."""
        return cls(config, ["decode"] + ([Process(processors)] if processors is not None else []))

    @classmethod
    def from_file(cls, path: Any, *, config: TaliConfig | None = None) -> Pipeline:
        """A pipeline declared in YAML or TOML (see :mod:`tali.pipeline.spec`)."""
        from tali.pipeline.spec import pipeline_from_file

        return pipeline_from_file(path, config=config)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, config: TaliConfig | None = None) -> Pipeline:
        from tali.pipeline.spec import pipeline_from_dict

        return pipeline_from_dict(data, config=config)

    def _named(self, item: StageLike) -> tuple[str, Any]:
        if isinstance(item, str):
            if item == "decode":
                return "decode", "decode"
            raise TaliConfigError(
                f"Pipeline: {item!r} is not a built-in stage written by name; choose 'decode', or give "
                "AugmentStage/Process/SpecAugmentStage/UserStage objects (or a config file, Pipeline.from_file)"
            )
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
            name, stage = item
            return name, self._named(stage)[1] if not callable(stage) else _wrap(stage)
        if isinstance(item, Decode):
            return "decode", "decode"
        if callable(item):
            stage = _wrap(item)
            return getattr(stage, "name", type(stage).__name__), stage
        raise TaliConfigError(f"Pipeline: {item!r} is not a stage (a callable stage(sample, ctx) -> sample)")

    def _transform(self) -> TaliTransform:
        if self.augment is not None and self.augment.time is not None:
            return self.augment.decoder(self.config, durations=self.durations, plan=self._plan)
        return TaliTransform(
            self.config, durations=self.durations, choose=self._choose or default_choose, plan=self._plan
        )

    def _rebuilt(self, stages: list[tuple[str, Any]]) -> Pipeline:
        return Pipeline(self.config, stages, choose=self._choose, plan=self._plan, durations=self.durations)

    def with_durations(self, durations: Mapping[int, float] | None) -> Pipeline:
        """The same pipeline with clip lengths for text-only windows (the loaders pass theirs)."""
        return Pipeline(self.config, self.stages, choose=self._choose, plan=self._plan, durations=durations)

    @property
    def transform(self) -> TaliTransform:
        """The decode stage's :class:`~tali.transform.TaliTransform`."""
        return self.stages[self.decode_index][1].transform

    @property
    def names(self) -> list[str]:
        return [n for n, _ in self.stages]

    def _index(self, name: str) -> int:
        if name not in self.names:
            raise TaliConfigError(f"Pipeline has no stage {name!r}; stages: {self.names}")
        return self.names.index(name)

    def insert(
        self,
        stage: StageLike,
        *,
        before: str | None = None,
        after: str | None = None,
        name: str | None = None,
    ) -> Pipeline:
        """A new pipeline with ``stage`` before or after a named one (default: at the end)."""
        if before is not None and after is not None:
            raise TaliConfigError("Pipeline.insert: give before= or after=, not both")
        at = (
            len(self.stages)
            if before is None and after is None
            else (
                self._index(before) if before is not None else self._index(after) + 1  # type: ignore[arg-type]
            )
        )
        stages = list(self.stages)
        stages.insert(at, (name, stage) if name else stage)
        return self._rebuilt(stages)

    def drop(self, name: str) -> Pipeline:
        if name == "decode":
            raise TaliConfigError("Pipeline.drop: 'decode' cannot be dropped (every sample starts there)")
        stages = list(self.stages)
        del stages[self._index(name)]
        return self._rebuilt(stages)

    def replace(self, name: str, stage: StageLike) -> Pipeline:
        """Swap a named stage for another (it keeps the name unless ``stage`` is a (name, stage) pair)."""
        stages = list(self.stages)
        at = self._index(name)
        stages[at] = stage if isinstance(stage, tuple) else (name, stage)
        return self._rebuilt(stages)

    # -- running --------------------------------------------------------------------------------

    def context(
        self, row: Mapping[str, Any], *, key: int, epoch: int, sample: Mapping[str, Any] | None = None
    ) -> StageContext:
        """``key``: the row's position in its source. Randomness is keyed by
        :func:`tali.window.seed_key` (the row's ``item_idx``; for a cached sample, whose
        row was not read, the ``item_idx`` it recorded)."""
        source: Any = sample if row is UNREAD_ROW and sample is not None else row
        item_idx = None if source is UNREAD_ROW else source.get("item_idx")
        item_idx = item_idx if isinstance(item_idx, int) and not isinstance(item_idx, bool) else None
        return StageContext(
            row=row,
            key=key,
            epoch=epoch,
            config=self.config,
            item_idx=item_idx if item_idx is None or item_idx >= 0 else None,
            seed_key=seed_key({"item_idx": item_idx}, key),
        )

    def __call__(self, row: Mapping[str, Any], *, key: int, epoch: int = 0) -> dict[str, Any]:
        ctx = self.context(row, key=key, epoch=epoch)
        return self._run(self.stages, {}, ctx)

    def decode(self, row: Mapping[str, Any], *, key: int, epoch: int = 0) -> dict[str, Any]:
        """The stages up to and including decode (what a :class:`SampleCache` stores)."""
        return self._run(self.stages[: self.decode_index + 1], {}, self.context(row, key=key, epoch=epoch))

    def finish(
        self, sample: dict[str, Any], row: Mapping[str, Any], *, key: int, epoch: int = 0
    ) -> dict[str, Any]:
        """The stages after decode, on a decoded (or cached) sample."""
        ctx = self.context(row, key=key, epoch=epoch, sample=sample)
        ctx.window = sample.get("window")
        return self._run(self.stages[self.decode_index + 1 :], sample, ctx)

    def finish_placeholder(self, sample: dict[str, Any]) -> dict[str, Any]:
        """A substituted placeholder goes through the built-in stages after decode
        (augment, process, spec_augment; user stages are skipped: the row is bad), so it
        batches with the good samples: same keys, shapes and dtypes."""
        ctx = self.context(
            UNREAD_ROW, key=int(sample.get("key", 0)), epoch=int(sample.get("epoch", 0)), sample=sample
        )
        ctx.window = sample.get("window")
        for _, stage in self.stages[self.decode_index + 1 :]:
            if isinstance(stage, AugmentStage):
                sample = stage.placeholder(sample, ctx)
            elif isinstance(stage, Process | SpecAugmentStage):
                sample = stage(sample, ctx)
        return sample

    def _run(
        self, stages: Sequence[tuple[str, Any]], sample: dict[str, Any], ctx: StageContext
    ) -> dict[str, Any]:
        for name, stage in stages:
            try:
                out = stage(sample, ctx)
            except TaliDataError:
                raise
            except Exception as exc:
                if not isinstance(stage, UserStage):
                    raise
                raise TaliStageError(
                    f"stage {name!r} raised {type(exc).__name__}: {exc}",
                    item_idx=ctx.item_idx,
                    field=f"stage:{name}",
                ) from exc
            if not isinstance(out, dict):
                raise TaliStageError(
                    f"stage {name!r} returned {type(out).__name__}, not the sample dict",
                    item_idx=ctx.item_idx,
                    field=f"stage:{name}",
                )
            sample = out
            ctx.window = sample.get("window", ctx.window)
        return sample

    def collate(self, samples: Sequence[dict[str, Any]]) -> Any:
        """Batch samples: the last process stage's ``collate`` if it has one, else ``tali.collate``."""
        for _, stage in reversed(self.stages):
            if isinstance(stage, Process) and hasattr(stage.processors, "collate"):
                return stage.processors.collate(samples)
        return default_collate(samples)

    # -- identity -------------------------------------------------------------------------------

    def spec(self) -> dict[str, Any]:
        stages = []
        for name, stage in self.stages:
            spec = stage.spec() if hasattr(stage, "spec") else {"stage": _ref(stage)}
            stages.append({"name": name, **spec})
        return {
            "config": self.config.to_dict(),
            "choose": _ref(self._choose) if self._choose is not None else "default",
            "plan": _ref(self._plan) if self._plan is not None else "default",
            "stages": stages,
        }

    def fingerprint(self) -> str:
        """Stable across processes and runs: config, window choice, each stage's name and arguments."""
        blob = json.dumps(self.spec(), sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    @property
    def default_decode(self) -> bool:
        """Whether decode is the plain one (the window chosen by the config alone)."""
        return (
            self._choose is None
            and self._plan is None
            and (self.augment is None or self.augment.time is None)
        )

    def cache_fingerprint(self) -> str:
        """What a :class:`SampleCache` keys decoded samples on: the config's fingerprint
        for the plain decode (existing caches stay valid), else the decode prefix's."""
        if self.default_decode:
            return self.config.fingerprint()
        spec = self.spec()
        spec["stages"] = spec["stages"][: self.decode_index + 1]
        spec["augment_time"] = repr(self.augment.time) if self.augment is not None else None
        return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"Pipeline({' -> '.join(self.names)})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Pipeline) and self.fingerprint() == other.fingerprint()

    __hash__ = None  # type: ignore[assignment]


def _wrap(stage: Any) -> Any:
    """Built-in stage objects stay as they are; any other callable becomes a UserStage."""
    if isinstance(stage, AugmentStage | Process | SpecAugmentStage | UserStage | Decode):
        return stage
    return UserStage(stage)


def resolve_pipeline(
    config: TaliConfig | None,
    processors: Callable[[dict[str, Any]], dict[str, Any]] | None,
    pipeline: Pipeline | None,
    durations: Mapping[int, float] | None,
) -> Pipeline:
    """The pipeline a loader runs: ``pipeline=`` if given, else the default one
    (decode + ``processors=``); either way with the loader's clip lengths."""
    if pipeline is None:
        return Pipeline.default(config, processors).with_durations(durations)
    if not isinstance(pipeline, Pipeline):
        raise TaliConfigError(f"pipeline= must be a tali.pipeline.Pipeline, got {type(pipeline).__name__}")
    if processors is not None:
        raise TaliConfigError("give processors= or pipeline=, not both (add a Process stage to the pipeline)")
    if config is not None and config != pipeline.config:
        raise TaliConfigError(
            "config= differs from pipeline.config; give one (the pipeline carries its config)"
        )
    return pipeline.with_durations(durations)
