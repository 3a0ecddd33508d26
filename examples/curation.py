"""A curation pipeline: validate -> metrics -> filter -> load the filtered shards.

    python examples/curation.py --out curated/                     # the sample data's test split
    python examples/curation.py --root ~/data/TALI --split train --out curated/ --workers 8

1. ``validate`` every row (schema, decodable clip, image, subtitles, text);
2. ``compute_metrics``: per-row video/audio/sync/text measurements as parquet;
3. ``select`` with SQL over metadata + metrics (rows that failed validation are dropped
   too), written as new shards in the exact TALI schema and Hub layout;
4. load the new shards with ``tali`` and check every kept row comes back.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import tali
from tali.quality import compute_metrics, select, validate

WHERE = "audio_present AND audio_silence_ratio < 0.5 AND frozen_frame_ratio < 0.2 AND video_duration_seconds >= 20"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=None, help="dataset directory (default: the sample data)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--out", required=True, help="folder for the metrics table and the curated shards")
    parser.add_argument("--where", default=WHERE)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    root, out = args.root or tali.sample_data.build(), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    report = validate(root, split=args.split, workers=args.workers)
    bad = sorted({f.item_idx for f in report.failures if f.item_idx is not None})
    print(f"validated {report.rows} rows: {report.failed_rows} failed {bad}")

    metrics = compute_metrics(root, split=args.split, out=out / "metrics.parquet", workers=args.workers)
    print(f"metrics for {metrics.num_rows} rows -> {out / 'metrics.parquet'}")

    where = args.where + (f" AND item_idx NOT IN ({', '.join(map(str, bad))})" if bad else "")
    result = select(root, split=args.split, metrics=out / "metrics.parquet", where=where)
    summary = result.write_shards(out / "curated", overwrite=True)
    print(f"kept {result.kept} of {result.read} rows ({where}); counts reconcile: {summary.ok}")

    curated = tali.TaliDataset(
        out / "curated",
        split=args.split,
        config=tali.TaliConfig(modalities=("youtube_title_text", "wikipedia_caption_image")),
    )
    loaded = sorted(curated[i]["item_idx"] for i in range(len(curated)))
    print(f"loaded back {len(loaded)} rows: {loaded}")
    if loaded != sorted(result.item_ids) or not summary.ok:
        raise SystemExit("the curated shards do not hold exactly the kept rows")


if __name__ == "__main__":
    main()
