"""Custom transform pipelines: named, picklable stages that see the sample's window (docs/PIPELINES.md)."""

from tali.pipeline.pipeline import Pipeline
from tali.pipeline.spec import BUILTIN_STAGES, config_from_dict, pipeline_from_dict, pipeline_from_file
from tali.pipeline.stages import AugmentStage, Decode, Process, SpecAugmentStage, StageContext, UserStage

__all__ = [
    "BUILTIN_STAGES",
    "AugmentStage",
    "Decode",
    "Pipeline",
    "Process",
    "SpecAugmentStage",
    "StageContext",
    "UserStage",
    "config_from_dict",
    "pipeline_from_dict",
    "pipeline_from_file",
]
