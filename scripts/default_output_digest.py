"""Digest of every default-config sample (map-style epochs 0-1 and streaming; train and realworld splits).

Run before and after a refactor of the loaders: equal digests mean bit-identical outputs.

    PYTHONPATH=src python scripts/default_output_digest.py
"""

import hashlib

import torch

import tali


def feed(h, v):
    if isinstance(v, dict):
        for k in sorted(v):
            h.update(k.encode())
            feed(h, v[k])
    elif isinstance(v, torch.Tensor):
        h.update(str(v.dtype).encode())
        h.update(v.contiguous().numpy().tobytes())
    elif isinstance(v, (list, tuple)):
        for x in v:
            feed(h, x)
    else:
        h.update(repr(v).encode())


root = tali.sample_data.build()
out = {}
for split in ("train", "realworld"):
    ds = tali.TaliDataset(root, split=split, on_error="skip")
    for epoch in (0, 1):
        ds.set_epoch(epoch)
        h = hashlib.sha256()
        for i in range(len(ds)):
            feed(h, ds[i])
        out[f"map/{split}/{epoch}"] = h.hexdigest()[:16]
    st = tali.TaliStream(ds.files, split=split, on_error="skip", shuffle=False)
    h = hashlib.sha256()
    for s in st:
        feed(h, s)
    out[f"stream/{split}"] = h.hexdigest()[:16]
print(out)
