"""How far `tali prepare` moves the loader's frames: per-frame mean |diff| (levels of 255) of
the prepared copy against the original, same rows, windows and frames, at the default 224.

Two kinds of content: the sample dataset's clips (smooth gradients and a code grid; every
real-world class) and textured 640x360 clips (1/f^beta noise panning, x264 CRF 20), where
fine detail is what the 256 px rescale and CRF 23 lose. Prints JSON (docs/SCALE.md).

    python benchmarks/prepare/fidelity.py [--windows 4]
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

import av
import numpy as np
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tali import TaliConfig, TaliTransform, VideoConfig, WindowConfig, sample_data
from tali.prepare import PrepareSettings
from tali.prepare.encode import reencode

CONFIG = TaliConfig(
    modalities=["video"], window=WindowConfig(seconds=1.5, start="random"), video=VideoConfig(num_frames=8)
)


def _diffs(data: bytes, windows: int) -> list[float]:
    transform = TaliTransform(CONFIG)
    row = {"item_idx": 0, "youtube_video_content": data}
    prepared = {"item_idx": 0, "youtube_video_content": reencode(data, PrepareSettings()).data}
    out: list[float] = []
    for key in range(windows):
        a = transform(row, key=key)["youtube_content_video"]
        b = transform(prepared, key=key)["youtube_content_video"]
        same = (a["mask"] & b["mask"]).numpy()
        diff = (a["frames"].int() - b["frames"].int()).abs().float().mean(dim=(1, 2, 3)).numpy()
        out += diff[same].tolist()
    return out


def _noise_clip(beta: float, seed: int, width: int = 640, height: int = 360, seconds: int = 4) -> bytes:
    rng = np.random.default_rng(seed)
    h, w = height + 200, width + 400
    f = np.hypot(np.fft.fftfreq(h)[:, None], np.fft.fftfreq(w)[None, :])
    f[0, 0] = 1.0
    planes = []
    for _ in range(3):
        x = np.real(np.fft.ifft2((rng.normal(size=(h, w)) + 1j * rng.normal(size=(h, w))) / f**beta))
        planes.append((x - x.mean()) / x.std())
    field = np.stack(planes, axis=-1)
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        video = container.add_stream("libx264", rate=30)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.options = {"preset": "medium", "crf": "20"}
        for i in range(seconds * 30):
            rgb = np.clip(128 + 50 * field[i : i + height, 2 * i : 2 * i + width], 0, 255).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = i
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--windows", type=int, default=4)
    args = parser.parse_args()
    root = sample_data.build()
    truth = sample_data.load_truth(root)
    per_clip: dict[str, list[float]] = {}
    for path in sorted((root / "data").glob("*.parquet")):
        for row in pq.read_table(path, columns=["item_idx", "youtube_video_content"]).to_pylist():
            t = truth[row["item_idx"]]
            if t["fps"] > PrepareSettings().max_fps:  # the fps cap picks other frames
                continue
            per_clip[t.get("variant", f"row {row['item_idx']}")] = _diffs(
                row["youtube_video_content"], args.windows
            )
    textured = {
        f"noise 1/f^{beta}": _diffs(_noise_clip(beta, seed), args.windows)
        for seed, beta in enumerate((1.3, 1.0, 0.8))
    }

    def stats(values: list[float]) -> dict[str, float]:
        return {"mean": round(float(np.mean(values)), 2), "worst_frame": round(float(np.max(values)), 2)}

    means = [np.mean(v) for v in per_clip.values() if v]
    print(
        json.dumps(
            {
                "sample_clips": {
                    "clips": len(means),
                    "mean_range": [round(float(min(means)), 2), round(float(max(means)), 2)],
                    "mean": round(float(np.mean(means)), 2),
                },
                "textured": {name: stats(v) for name, v in textured.items()},
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
