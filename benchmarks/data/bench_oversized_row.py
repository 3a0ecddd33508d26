"""What an oversized clip costs before the loaders refuse it. Prints JSON.

    python benchmarks/data/bench_oversized_row.py [--mb 200] [--group-rows 1 10]

A val shard of the sample with one row's clip replaced by ``--mb`` MB of random
(incompressible) bytes, written with pyarrow's defaults at each ``--group-rows``
rows per row group (the dictionary layout: read a row group at a time). For each,
a fresh process reads a good row, then the bad one through ``TaliDataset`` under
``on_error="skip"``: the peak RSS above the level after the good row (VmHWM), and
the refusal's message. A one-row group is refused from the footer before it is
read; in a many-row group the value is read with its group (shared by its rows)
and refused before it becomes a Python object.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, sys
from tali import TaliConfig, TaliDataset

def hwm():
    return int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1]) * 1024

ds = TaliDataset(sys.argv[1], split="val", config=TaliConfig(modalities=("youtube_content_video",)),
                 on_error="skip", cache_row_groups=0)
ds[len(ds) - 1]  # a good row of another group: the process's level
base = hwm()
sample = ds[int(sys.argv[2])]
print(json.dumps({"peak_above_level_mib": round((hwm() - base) / 2**20, 1),
                  "bytes_read": ds.source.bytes_read,
                  "refused": [e["message"][:90] for e in sample["errors"]]}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--group-rows", type=int, nargs="+", default=[1, 10])
    args = parser.parse_args()

    import pyarrow as pa
    import pyarrow.parquet as pq

    from tali import sample_data

    source = min((Path(sample_data.build()) / "data").glob("val-*.parquet"))
    rows = pq.read_table(source).to_pylist()
    rows = (rows * 10)[:11]
    bad = 0
    rows[bad] = dict(rows[bad], youtube_video_content=os.urandom(args.mb * 1_000_000))
    results = []
    for group in args.group_rows:
        with tempfile.TemporaryDirectory(prefix="tali-oversized-") as tmp:
            (Path(tmp) / "data").mkdir()
            table = pa.Table.from_pylist(rows, schema=pq.read_schema(source))
            pq.write_table(table, Path(tmp) / "data" / "val-00000-of-00001.parquet", row_group_size=group)
            done = subprocess.run(
                [sys.executable, "-c", CHILD, tmp, str(bad)], capture_output=True, text=True, check=True
            )
            results.append({"rows_per_group": group, **json.loads(done.stdout.strip().splitlines()[-1])})
    print(json.dumps({"clip_mb": args.mb, "results": results}, indent=2))


if __name__ == "__main__":
    main()
