"""Per-shard jobs on the infrastructure floor: parts named by shard identity, a runner with
a progress bar, and pluggable executors (inline, process pool; Ray registers itself)."""

from tali.jobs.executors import (
    Executor,
    Inline,
    ProcessPool,
    ShardJob,
    executor_for,
    register_executor,
    report_rows,
)
from tali.jobs.parts import part_path, parts_dir_of, remove_parts, shard_identity
from tali.jobs.runner import run_shards

__all__ = [
    "Executor",
    "Inline",
    "ProcessPool",
    "ShardJob",
    "executor_for",
    "part_path",
    "parts_dir_of",
    "register_executor",
    "remove_parts",
    "report_rows",
    "run_shards",
    "shard_identity",
]
