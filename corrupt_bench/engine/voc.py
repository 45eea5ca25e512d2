"""Occluder banks: objects cut out of Pascal VOC 2012 (after Sarandi et al. 2018) or, for the demo,
out of the images that scikit-image ships.

Extraction from a VOC2012-layout folder: for every image with an instance mask
(`SegmentationObject/<id>.png`, a palette PNG whose index i is the i-th `<object>` of
`Annotations/<id>.xml`), keep the objects that are not persons, not difficult, not truncated and
whose mask has at least 500 px; cut the object's box from `JPEGImages/<id>.jpg` with an alpha
channel that is the mask eroded by one pixel and blurred (a soft border). The bank is cached as an
npz (no pickle) named by the digest of the source files; that digest goes into every params record.
"""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from corrupt_bench.errors import UserError
from corrupt_bench.io import atomic_path

MIN_MASK_PX = 500
EXCLUDED_CLASSES = frozenset({"person"})
CACHE_PREFIX = "voc_occluders_"


@dataclass(frozen=True)
class OccluderBank:
    """RGBA occluders (h, w, 4) uint8 with premultiplied-free soft alpha, and the bank's digest."""

    occluders: tuple[np.ndarray, ...]
    digest: str
    source: str  # "voc:<folder name>" or "builtin:skimage"

    def __len__(self) -> int:
        return len(self.occluders)


def soft_alpha(mask: np.ndarray) -> np.ndarray:
    """uint8 alpha from a boolean mask: eroded by one pixel, then blurred (soft border)."""
    alpha = cv2.erode(mask.astype(np.uint8) * 255, np.ones((3, 3), np.uint8))
    return cv2.GaussianBlur(alpha, (5, 5), 1.0)


def cut_occluder(image_rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The RGBA patch of the mask's bounding box (2 px of margin: the soft border fits inside)."""
    ys, xs = np.nonzero(mask)
    y0, y1 = max(int(ys.min()) - 2, 0), min(int(ys.max()) + 3, mask.shape[0])
    x0, x1 = max(int(xs.min()) - 2, 0), min(int(xs.max()) + 3, mask.shape[1])
    alpha = soft_alpha(mask)[y0:y1, x0:x1]
    return np.ascontiguousarray(np.dstack([image_rgb[y0:y1, x0:x1], alpha]))


def bank_digest(occluders: tuple[np.ndarray, ...] | list[np.ndarray]) -> str:
    h = hashlib.sha256()
    for occ in occluders:
        h.update(np.asarray(occ.shape, dtype=np.int64).tobytes())
        h.update(np.ascontiguousarray(occ).tobytes())
    return h.hexdigest()


def _voc_objects(xml_path: Path) -> list[tuple[str, bool, bool]]:
    try:
        root = ET.parse(xml_path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise UserError(f"cannot parse VOC annotation ({exc})", xml_path) from exc
    out = []
    for obj in root.findall("object"):
        name = (obj.findtext("name") or "").strip()
        difficult = (obj.findtext("difficult") or "0").strip() == "1"
        truncated = (obj.findtext("truncated") or "0").strip() == "1"
        out.append((name, difficult, truncated))
    return out


def _image_ids(root: Path) -> list[str]:
    seg = root / "SegmentationObject"
    if not seg.is_dir():
        raise UserError("not a VOC2012 folder: SegmentationObject/ is missing", root)
    listed = root / "ImageSets" / "Segmentation" / "trainval.txt"
    if listed.is_file():
        ids = [line.strip() for line in listed.read_text().splitlines() if line.strip()]
    else:
        ids = [p.stem for p in seg.glob("*.png")]
    return sorted(ids)


def _source_files(root: Path, image_id: str) -> tuple[Path, Path, Path]:
    return (
        root / "Annotations" / f"{image_id}.xml",
        root / "SegmentationObject" / f"{image_id}.png",
        root / "JPEGImages" / f"{image_id}.jpg",
    )


def source_digest(root: Path) -> str:
    """SHA-256 over the names and bytes of every file the bank is cut from."""
    h = hashlib.sha256()
    for image_id in _image_ids(root):
        for path in _source_files(root, image_id):
            if not path.is_file():
                raise UserError("file listed by the VOC folder is missing", path)
            h.update(path.relative_to(root).as_posix().encode())
            h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def extract_voc_occluders(root: Path) -> list[np.ndarray]:
    """Cut every usable object of a VOC2012-layout folder (see the module docstring)."""
    occluders = []
    for image_id in _image_ids(root):
        xml_path, seg_path, jpg_path = _source_files(root, image_id)
        objects = _voc_objects(xml_path)
        instances = _read_image(seg_path, palette=True)
        _read_image(jpg_path, palette=False)  # the size from the header, before OpenCV decodes it all
        bgr = cv2.imread(str(jpg_path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise UserError("cannot decode JPEG", jpg_path)
        if bgr.shape[:2] != instances.shape:
            raise UserError(f"mask size {instances.shape} differs from image {bgr.shape[:2]}", seg_path)
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        for i, (name, difficult, truncated) in enumerate(objects, start=1):
            if name in EXCLUDED_CLASSES or difficult or truncated:
                continue
            mask = instances == i
            if int(mask.sum()) < MIN_MASK_PX:
                continue
            occluders.append(cut_occluder(rgb, mask))
    return occluders


MAX_SOURCE_PIXELS = 16_000_000  # VOC 2012 images are about 500 x 375; anything this large is not one


def _check_pixels(size: tuple[int, int], path: Path) -> None:
    if size[0] * size[1] > MAX_SOURCE_PIXELS:
        raise UserError(f"image of {size[0]}x{size[1]} px is larger than a VOC image can be ({MAX_SOURCE_PIXELS:,} px); refused", path)


def _read_image(path: Path, palette: bool) -> np.ndarray | None:
    """The palette indices of an instance mask (`palette`), else only the image's size checked; a damaged
    or oversized file is one UserError naming it."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            _check_pixels(image.size, path)
            if not palette:
                return None
            if image.mode != "P":
                raise UserError(f"instance mask must be a palette PNG, got mode {image.mode}", path)
            return np.array(image)
    except UserError:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:  # PIL's faults of a damaged file
        raise UserError(f"cannot decode the image ({type(exc).__name__}: {str(exc)[:120]})", path) from None


def save_bank(bank: OccluderBank, path: Path) -> None:
    shapes = np.array([o.shape[:2] for o in bank.occluders], dtype=np.int64).reshape(-1, 2)
    pixels = np.concatenate([o.reshape(-1) for o in bank.occluders]) if bank.occluders else np.zeros(0, np.uint8)
    with atomic_path(path, suffix=".npz") as tmp:  # numpy appends .npz to a name without it
        np.savez_compressed(tmp, shapes=shapes, pixels=pixels, digest=np.array(bank.digest), source=np.array(bank.source))


def load_bank_file(path: Path) -> OccluderBank:
    with np.load(path, allow_pickle=False) as data:
        shapes, pixels = data["shapes"], data["pixels"]
        digest, source = str(data["digest"]), str(data["source"])
    occluders, start = [], 0
    for h, w in shapes:
        n = int(h) * int(w) * 4
        occluders.append(pixels[start : start + n].reshape(int(h), int(w), 4))
        start += n
    bank = OccluderBank(tuple(occluders), digest, source)
    if bank_digest(bank.occluders) != digest:
        raise UserError("occluder cache is corrupt (digest mismatch); delete it", path)
    return bank


def load_voc_bank(voc_root: str | Path, cache_dir: str | Path) -> OccluderBank:
    """The occluder bank of a VOC2012 folder, from the cache when the source files are unchanged."""
    root = Path(voc_root)
    if not root.is_dir():
        raise UserError("VOC folder not found", root)
    key = source_digest(root)
    cache = Path(cache_dir) / f"{CACHE_PREFIX}{key[:32]}.npz"
    if cache.is_file():
        return load_bank_file(cache)
    occluders = tuple(extract_voc_occluders(root))
    if not occluders:
        raise UserError("no usable occluder (non-person, not difficult/truncated, >= 500 px)", root)
    bank = OccluderBank(occluders, bank_digest(occluders), f"voc:{root.name}")
    cache.parent.mkdir(parents=True, exist_ok=True)
    save_bank(bank, cache)
    return bank


def _ellipse_mask(shape: tuple[int, int], centre: tuple[int, int], axes: tuple[int, int]) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    cv2.ellipse(mask, centre, axes, 0, 0, 360, 1, -1)
    return mask.astype(bool)


def _skimage_image(name: str) -> np.ndarray:
    """An RGB image bundled with scikit-image, read with OpenCV (skimage.io is slow to import)."""
    from importlib.resources import files

    path = files("skimage.data") / name
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(f"scikit-image's bundled image {name} is missing")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


@lru_cache(maxsize=1)
def builtin_bank() -> OccluderBank:
    """A small demo bank cut from images bundled with scikit-image (simple hand-placed masks)."""
    coffee, chelsea, astronaut, rocket = (_skimage_image(n) for n in ("coffee.png", "chelsea.png", "astronaut.png", "rocket.jpg"))
    horse = _skimage_image("horse.png")[..., 0] > 127  # True is background in this silhouette
    coins = _skimage_image("coins.png")
    cuts = [
        (coffee, _ellipse_mask(coffee.shape[:2], (300, 190), (170, 150))),  # the cup and saucer
        (chelsea, _ellipse_mask(chelsea.shape[:2], (230, 150), (120, 110))),  # the cat's head
        (astronaut, _ellipse_mask(astronaut.shape[:2], (440, 370), (60, 130))),  # the shuttle's black-and-white side
        (rocket, _ellipse_mask(rocket.shape[:2], (325, 230), (45, 190))),  # the rocket
        (coins, _ellipse_mask(coins.shape[:2], (190, 150), (170, 130))),  # a tray of coins
    ]
    brown = np.empty(horse.shape + (3,), np.uint8)
    brown[:] = (120, 80, 45)
    cuts.append((cv2.add(brown, (coffee[:328, :400] // 4)), ~horse))  # a textured horse silhouette
    occluders = []
    for img, mask in cuts:
        occ = cut_occluder(img, mask)
        f = 160 / max(occ.shape[:2])  # small patches: cheap to resize per frame
        occluders.append(cv2.resize(occ, (round(occ.shape[1] * f), round(occ.shape[0] * f)), interpolation=cv2.INTER_AREA))
    return OccluderBank(tuple(occluders), bank_digest(occluders), "builtin:skimage")
