"""Ray Data for TALI (``pip install 'tali-dataset[ray]'``): shards as a Dataset, samples via
``map_batches``, and the per-shard jobs (validate, metrics, prepare, filter) as Ray tasks."""

from tali.ray._backend import connect, require_ray
from tali.ray.data import TaliBatchTransform, flatten_sample, read_tali, row_groups
from tali.ray.jobs import MAX_RETRIES, run_shard_jobs

__all__ = [
    "MAX_RETRIES",
    "TaliBatchTransform",
    "connect",
    "flatten_sample",
    "read_tali",
    "require_ray",
    "row_groups",
    "run_shard_jobs",
]
