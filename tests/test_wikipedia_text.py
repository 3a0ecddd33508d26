"""Wikipedia texts: the caption/title/body rules and the language choice with seeded fallback."""

from __future__ import annotations

import pytest

from tali import TaliConfig, TaliTransform, TextConfig

TEXTS = ["wikipedia_caption_text", "wikipedia_title_text", "wikipedia_main_body_text"]


def _texts(row, key=0, **text):
    # randomness is keyed by the row's item_idx (tali.window.seed_key): vary the seed to draw again
    return TaliTransform(TaliConfig(modalities=TEXTS, text=TextConfig(**text), seed=key))(row, key=0)


def test_priority_language_when_present(rows, truth):
    for item_idx, row in rows.items():
        if "en" not in truth[item_idx]["languages"]:
            continue
        sample = _texts(row)
        assert {sample[k]["language"] for k in TEXTS} == {"en"}
        assert (
            sample["wikipedia_main_body_text"]["text"]
            == f"page body {item_idx} en\nsection body {item_idx} en"
        )


def test_seeded_fallback_when_the_language_is_absent(rows, truth):
    item = next(i for i, t in truth.items() if t["languages"] == ["de", "fr"])
    chosen = {_texts(rows[item], key=k)["wikipedia_caption_text"]["language"] for k in range(40)}
    assert chosen == {"de", "fr"}, "the fallback draws among the row's languages"
    assert _texts(rows[item], key=3) == _texts(rows[item], key=3), "and is reproducible"
    assert {
        _texts(rows[item], key=k, fallback="first")["wikipedia_caption_text"]["language"] for k in range(5)
    } == {"de"}


def test_caption_falls_back_when_the_reference_caption_is_null(rows, truth):
    item = next(i for i, t in truth.items() if i % 3 == 2 and t["languages"] == ["en"])
    sample = _texts(rows[item], language="en")
    assert sample["wikipedia_caption_text"]["text"] == f"titled caption {item} en"


def test_title_skips_a_null_section_title(rows):
    item = 1  # every fourth row (item % 4 == 1) has no section titles
    for k in range(3):
        title = _texts(rows[item], key=k)["wikipedia_title_text"]
        assert title["text"] == f"page {item} {title['language']}"
    assert _texts(rows[0])["wikipedia_title_text"]["text"] == "page 0 en: section 0 en"


def test_all_languages(rows, truth):
    item = next(i for i, t in truth.items() if len(t["languages"]) == 3)
    sample = _texts(rows[item], language=None)
    assert sample["wikipedia_caption_text"]["language"] == truth[item]["languages"]
    assert len(sample["wikipedia_title_text"]["text"]) == 3


def test_youtube_texts_as_is(rows):
    sample = TaliTransform(TaliConfig(modalities=["youtube_title_text", "youtube_description_text"]))(
        rows[4], key=0
    )
    assert sample["youtube_title_text"]["text"] == "youtube title 4"
    assert sample["youtube_description_text"]["text"] == "youtube description 4"
    assert "window" not in sample


@pytest.mark.parametrize("scope", ["window", "clip"])
def test_subtitle_scope(rows, truth, scope):
    item = 1
    t = truth[item]
    sample = TaliTransform(
        TaliConfig(modalities=["youtube_subtitle_text", "video"], text=TextConfig(subtitles=scope))
    )(rows[item], key=2)
    start = t["start_second"]
    if scope == "clip":
        expected = [f"second {s}" for s in range(start, start + 30)]
    else:
        t0 = sample["window"]["start_seconds"]
        expected = [
            f"second {s}" for s in range(start, start + 31) if start + t0 <= s + 0.5 <= start + t0 + 3
        ]
    assert sample["youtube_subtitle_text"]["text"] == " ".join(expected)
