"""Occluder bank from a tiny Pascal VOC 2012 folder written in the real format (XML, palette PNG, JPEG)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from engine_frames import test_clip
from PIL import Image

from corrupt_bench.engine import corrupt_clip
from corrupt_bench.engine.voc import builtin_bank, load_voc_bank
from corrupt_bench.errors import UserError


def _palette() -> list[int]:
    """The VOC colour map (bit-interleaved), 256 entries."""
    pal = []
    for i in range(256):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        pal += [r, g, b]
    return pal


def _xml(image_id: str, objects: list[tuple[str, int, int]]) -> str:
    body = "".join(
        f"<object><name>{n}</name><pose>Unspecified</pose><truncated>{t}</truncated><difficult>{d}</difficult>"
        f"<bndbox><xmin>1</xmin><ymin>1</ymin><xmax>10</xmax><ymax>10</ymax></bndbox></object>"
        for n, t, d in objects
    )
    return (
        f"<annotation><folder>VOC2012</folder><filename>{image_id}.jpg</filename>"
        f"<size><width>120</width><height>90</height><depth>3</depth></size><segmented>1</segmented>{body}</annotation>"
    )


def write_voc(root: Path) -> Path:
    """Two images: objects 1..3 and 1..3 with one usable object each, plus one unlisted-but-present mask."""
    for sub in ("Annotations", "SegmentationObject", "JPEGImages", "ImageSets/Segmentation"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    specs = {
        # (name, truncated, difficult); instance index = position + 1
        "2007_000001": [("cat", 0, 0), ("person", 0, 0), ("dog", 0, 1)],
        "2007_000002": [("car", 1, 0), ("bottle", 0, 0), ("chair", 0, 0)],
    }
    boxes = {
        "2007_000001": [(5, 5, 55, 45), (60, 5, 110, 80), (5, 50, 50, 85)],  # cat 50x40 = 2000 px
        "2007_000002": [(5, 5, 60, 60), (70, 10, 80, 20), (60, 40, 115, 85)],  # bottle 10x10 = 100 px: too small
    }
    for k, (image_id, objects) in enumerate(specs.items()):
        (root / "Annotations" / f"{image_id}.xml").write_text(_xml(image_id, objects))
        inst = np.zeros((90, 120), np.uint8)
        for i, (x0, y0, x1, y1) in enumerate(boxes[image_id], start=1):
            inst[y0:y1, x0:x1] = i
        inst[0, :] = 255  # VOC's 'void' border label
        png = Image.fromarray(inst, mode="P")
        png.putpalette(_palette())
        png.save(root / "SegmentationObject" / f"{image_id}.png")
        yy, xx = np.mgrid[0:90, 0:120]
        bgr = np.dstack([(xx * 2 + k * 40) % 256, (yy * 3) % 256, np.full_like(xx, 90 + 60 * k)]).astype(np.uint8)
        cv2.imwrite(str(root / "JPEGImages" / f"{image_id}.jpg"), bgr)
    (root / "ImageSets" / "Segmentation" / "trainval.txt").write_text("\n".join(specs) + "\n")
    return root


def test_bank_skips_person_difficult_truncated_and_small(tmp_path):
    bank = load_voc_bank(write_voc(tmp_path / "VOC2012"), tmp_path / "cache")
    # usable: cat (image 1) and chair (image 2)
    assert len(bank) == 2
    sizes = sorted(o.shape[:2] for o in bank.occluders)
    assert sizes == [(44, 54), (49, 59)]  # object box + 2 px margin on each side
    for occ in bank.occluders:
        assert occ.dtype == np.uint8 and occ.shape[2] == 4
        alpha = occ[..., 3]
        assert alpha.max() == 255 and alpha[0, 0] == 0  # opaque inside, soft border to transparent
        assert 0 < np.count_nonzero((alpha > 0) & (alpha < 255))


def test_bank_cache_is_keyed_by_source_digest(tmp_path):
    root = write_voc(tmp_path / "VOC2012")
    cache = tmp_path / "cache"
    first = load_voc_bank(root, cache)
    files = sorted(cache.glob("*.npz"))
    assert len(files) == 1
    with np.load(files[0], allow_pickle=False) as data:  # no pickle inside
        assert set(data.files) == {"shapes", "pixels", "digest", "source"}
    again = load_voc_bank(root, cache)
    assert again.digest == first.digest
    assert all(np.array_equal(a, b) for a, b in zip(first.occluders, again.occluders, strict=True))
    # change a source JPEG: a new cache entry and a different bank
    cv2.imwrite(str(root / "JPEGImages" / "2007_000001.jpg"), np.zeros((90, 120, 3), np.uint8))
    changed = load_voc_bank(root, cache)
    assert changed.digest != first.digest
    assert len(sorted(cache.glob("*.npz"))) == 2


def test_bank_errors_name_the_file(tmp_path):
    with pytest.raises(UserError, match="VOC folder not found"):
        load_voc_bank(tmp_path / "nope", tmp_path / "cache")
    root = write_voc(tmp_path / "VOC2012")
    (root / "Annotations" / "2007_000002.xml").write_text("<annotation><object>")
    with pytest.raises(UserError, match="2007_000002.xml"):
        load_voc_bank(root, tmp_path / "cache")


def test_voc_occluder_records_bank_digest(tmp_path):
    bank = load_voc_bank(write_voc(tmp_path / "VOC2012"), tmp_path / "cache")
    clip = test_clip(n_views=1, n_frames=2, size=64)
    out, rec = corrupt_clip(clip, "voc_occluder", 5, 4, occluder_bank=bank)
    assert rec.params[0][0]["bank"] == bank.digest
    assert not np.array_equal(out.images, clip.images)
    default_out, default_rec = corrupt_clip(clip, "voc_occluder", 5, 4)
    assert default_rec.params[0][0]["bank"] == builtin_bank().digest != bank.digest
