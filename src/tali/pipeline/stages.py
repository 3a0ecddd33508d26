"""Stages: what runs on a sample between the parquet row and the batch.

A stage is any picklable callable ``stage(sample, ctx) -> sample``:

- ``sample``: the dict built so far (``{}`` before the decode stage; see
  :mod:`tali.transform` for the layout after it);
- ``ctx``: a :class:`StageContext`: the raw ``row``, ``key``, ``epoch``,
  ``item_idx``, the ``config``, the sample's ``window`` (clip seconds, once
  decoded) and ``rng(purpose)``, the sample's generator for a purpose (seeded
  by ``(seed, epoch, seed_key, purpose)``, ``seed_key`` the row's ``item_idx``
  (:func:`tali.window.seed_key`): the same in every worker, after a resume and
  in every entry point).

It may modify ``sample`` in place and return it, or return a new dict. An
exception other than :class:`~tali.errors.TaliDataError` inside a user stage
becomes a :class:`~tali.errors.TaliStageError` naming the stage and the row,
so the loader's ``on_error`` policy skips, substitutes or raises it.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tali.augment import Augment
from tali.clock import Stage as ClockStage
from tali.clock import timed
from tali.config import TaliConfig
from tali.errors import TaliConfigError
from tali.transform import TaliTransform, sample_rng_for

__all__ = ["AugmentStage", "Decode", "Process", "SpecAugmentStage", "StageContext", "UserStage"]


@dataclass
class StageContext:
    """What a stage may read besides the sample. ``window`` is the sample's
    ``window`` dict (``start_seconds``, ``duration_seconds``, ``clip_seconds``) once decoded."""

    row: Mapping[str, Any]
    key: int
    epoch: int
    config: TaliConfig
    item_idx: int | None = None
    window: Mapping[str, float] | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    #: What randomness is keyed by (:func:`tali.window.seed_key`); None: ``key``.
    seed_key: int | None = None

    def rng(self, purpose: str) -> np.random.Generator:
        seed = self.key if self.seed_key is None else self.seed_key
        return sample_rng_for(self.config.seed, self.epoch, seed, purpose)


class Decode:
    """The built-in decode stage: row -> sample (:class:`~tali.transform.TaliTransform`)."""

    name = "decode"

    def __init__(self, transform: TaliTransform) -> None:
        self.transform = transform

    def __call__(self, sample: dict[str, Any], ctx: StageContext) -> dict[str, Any]:
        out = self.transform(ctx.row, key=ctx.key, epoch=ctx.epoch)
        if sample:
            out.update(sample)
        return out

    def spec(self) -> dict[str, Any]:
        return {"stage": self.name}


class AugmentStage:
    """``Augment.apply`` on the decoded sample (its ``choose`` is the pipeline's window choice)."""

    name = "augment"

    def __init__(self, augment: Augment) -> None:
        self.augment = augment

    def __call__(self, sample: dict[str, Any], ctx: StageContext) -> dict[str, Any]:
        return self.augment.apply(sample, row=ctx.row, config=ctx.config, rng=ctx.rng)

    def placeholder(self, sample: dict[str, Any], ctx: StageContext) -> dict[str, Any]:
        """On a bad row's placeholder: the same draws and keys, nothing read from the row."""
        return self.augment.apply(sample, row=None, config=ctx.config, rng=ctx.rng)

    def spec(self) -> dict[str, Any]:
        return {"stage": self.name, "args": self.augment.to_dict()}


class SpecAugmentStage:
    """SpecAugment masks on the processed log-mel (after ``process``)."""

    name = "spec_augment"

    def __init__(self, augment: Augment) -> None:
        if augment.spec is None:
            raise TaliConfigError("stage 'spec_augment' needs Augment(spec=SpecAugment(...))")
        self.augment = augment

    def __call__(self, sample: dict[str, Any], ctx: StageContext) -> dict[str, Any]:
        return self.augment.after_process(sample, rng=ctx.rng)

    def spec(self) -> dict[str, Any]:
        return {"stage": self.name, "args": self.augment.to_dict()["spec"]}


class Process:
    """Model processors (a :class:`~tali.processors.ProcessorSet` or any
    ``sample -> sample`` callable); its ``collate`` becomes the pipeline's."""

    name = "process"

    def __init__(self, processors: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        self.processors = processors

    def __call__(self, sample: dict[str, Any], ctx: StageContext) -> dict[str, Any]:
        with timed(ClockStage.PROCESSORS):
            return self.processors(sample)

    def spec(self) -> dict[str, Any]:
        procs = getattr(self.processors, "processors", None)
        if isinstance(procs, Mapping):  # a ProcessorSet: each processor's class and settings
            described: Any = {name: describe(p) for name, p in sorted(procs.items())}
            described["keep_raw"] = bool(getattr(self.processors, "keep_raw", False))
        else:
            described = describe(self.processors)
        return {"stage": self.name, "processors": described}


def describe(obj: Any) -> dict[str, Any]:
    """Class and plain-valued public attributes: stable across processes (no addresses)."""
    plain = (int, float, str, bool, type(None))
    attrs = {
        k: (list(v) if isinstance(v, tuple) else v)
        for k, v in sorted(vars(obj).items() if hasattr(obj, "__dict__") else ())
        if not k.startswith("_")
        and (isinstance(v, plain) or (isinstance(v, tuple) and all(isinstance(x, plain) for x in v)))
    }
    return {"class": f"{type(obj).__module__}:{type(obj).__qualname__}", **attrs}


def resolve_target(target: str) -> Callable[..., Any]:
    """``"package.module:callable"`` (dots after the colon reach attributes) -> the object."""
    if not isinstance(target, str) or target.count(":") != 1:
        raise TaliConfigError(f"user stage {target!r} must be written 'module:callable'")
    module_name, attr = target.split(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise TaliConfigError(
            f"user stage {target!r}: cannot import module {module_name!r} ({exc})"
        ) from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise TaliConfigError(f"user stage {target!r}: module {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise TaliConfigError(f"user stage {target!r} is not callable")
    return obj


class UserStage:
    """A user function as a stage: ``fn(sample, ctx, **args) -> sample``.

    Given by reference (``"module:callable"``) it pickles as that reference, so
    it travels into DataLoader workers and fingerprints by name and arguments.
    Arguments are checked against the function's signature when built.
    """

    def __init__(self, fn: str | Callable[..., Any], *, name: str | None = None, **args: Any) -> None:
        self.target = fn if isinstance(fn, str) else f"{fn.__module__}:{fn.__qualname__}"
        self.fn = resolve_target(fn) if isinstance(fn, str) else fn
        if "<lambda>" in self.target or "<locals>" in self.target:
            raise TaliConfigError(
                f"user stage {self.target!r} is a lambda or a local function: DataLoader workers "
                "cannot import it; define it at module level"
            )
        self.name = name or self.target.rsplit(":", 1)[1]
        self.args = dict(args)
        try:
            signature = inspect.signature(self.fn)
        except (TypeError, ValueError):
            return
        try:
            signature.bind(None, None, **self.args)
        except TypeError:
            params = [p for p in list(signature.parameters)[2:]]
            unknown = [a for a in self.args if a not in signature.parameters]
            what = f"argument {unknown[0]!r} is not allowed" if unknown else "its arguments do not fit"
            raise TaliConfigError(
                f"stage {self.name!r} ({self.target}): {what}; allowed: {', '.join(params) or 'none'} "
                f"(signature {self.fn.__name__}{signature})"
            ) from None

    def __call__(self, sample: dict[str, Any], ctx: StageContext) -> dict[str, Any]:
        return self.fn(sample, ctx, **self.args)

    def __getstate__(self) -> dict[str, Any]:
        return {"target": self.target, "name": self.name, "args": self.args}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.target, self.name, self.args = state["target"], state["name"], state["args"]
        self.fn = resolve_target(self.target)

    def spec(self) -> dict[str, Any]:
        return {"stage": self.target, "name": self.name, "args": self.args}

    def __repr__(self) -> str:
        return f"UserStage({self.target!r}, name={self.name!r}, args={self.args})"
