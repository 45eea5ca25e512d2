"""Speed of the pixel corruptions: ours (sample + apply, from a fresh keyed generator) beside
imagecorruptions 1.1.2 and albumentations 2.0.8 at equal parameters (severity 3 of our tables,
person scale 1 so spatial sizes equal ImageNet-C's pixels), and beside np.copyto of the frame.
Single thread. Prints a markdown table.

    python benchmarks/engine.py [--sizes 256 1000] [--repeats 7]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import types  # noqa: E402
import warnings  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from corrupt_bench.engine import FrameContext, RngKey, get_corruption, list_corruptions  # noqa: E402

SEVERITY = 3


def _import_imagecorruptions():
    """imagecorruptions 1.1.2 imports pkg_resources (setuptools) only to locate its frost images;
    provide that one function when setuptools is absent."""
    if importlib.util.find_spec("pkg_resources") is None:
        shim = types.ModuleType("pkg_resources")

        def resource_filename(package: str, name: str) -> str:
            return os.path.join(os.path.dirname(importlib.util.find_spec(package).origin), name)

        shim.resource_filename = resource_filename
        sys.modules["pkg_resources"] = shim
    try:
        from imagecorruptions import corrupt
    except ImportError:
        return None
    return corrupt


def _albumentations_ops(name: str, row: dict, size: int):
    try:
        import albumentations as A
    except ImportError:
        return None
    odd = lambda v: int(v) | 1  # noqa: E731
    ops = {
        "gaussian_noise": lambda: A.GaussNoise(std_range=(row.get("sigma", 0), row.get("sigma", 0)), mean_range=(0, 0), per_channel=True, noise_scale_factor=1, p=1),
        "shot_noise": lambda: A.ShotNoise(scale_range=(1 / row["photons"], 1 / row["photons"]), p=1),
        "salt_pepper": lambda: A.SaltAndPepper(amount=(row["amount"], row["amount"]), salt_vs_pepper=(0.5, 0.5), p=1),
        "defocus_blur": lambda: A.Defocus(radius=(int(row["radius"]), int(row["radius"])), alias_blur=(row["alias_blur"], row["alias_blur"]), p=1),
        "motion_blur": lambda: A.MotionBlur(blur_limit=(odd(row["length"]), odd(row["length"])), allow_shifted=False, p=1),
        "brightness": lambda: A.HueSaturationValue(hue_shift_limit=0, sat_shift_limit=0, val_shift_limit=(row["delta"] * 255, row["delta"] * 255), p=1),
        "contrast": lambda: A.RandomBrightnessContrast(brightness_limit=(0, 0), contrast_limit=(row["factor"] - 1, row["factor"] - 1), p=1),
        "jpeg_compression": lambda: A.ImageCompression(quality_range=(row["quality"], row["quality"]), compression_type="jpeg", p=1),
        "pixelate": lambda: A.Downscale(scale_range=(row["factor"], row["factor"]), interpolation_pair={"downscale": cv2.INTER_AREA, "upscale": cv2.INTER_NEAREST}, p=1),
        "block_dropout": lambda: A.CoarseDropout(
            num_holes_range=(row["count"], row["count"]),
            hole_height_range=(int(row["size"] * 224), int(row["size"] * 224)),
            hole_width_range=(int(row["size"] * 224), int(row["size"] * 224)), fill=0, p=1),
        "random_erase": lambda: A.Erasing(scale=(row["area"] * 224 * 224 / size**2,) * 2, ratio=(0.3, 3.3), fill="random", p=1),
    }  # fmt: skip
    if name not in ops:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return A.Compose([ops[name]()])
    except (AttributeError, TypeError, ValueError) as exc:
        print(f"albumentations {name}: {exc}", file=sys.stderr)
        return None


IMAGECORRUPTIONS_NAMES = {
    "gaussian_noise": "gaussian_noise", "shot_noise": "shot_noise", "salt_pepper": "impulse_noise",
    "speckle_noise": "speckle_noise", "defocus_blur": "defocus_blur", "motion_blur": "motion_blur",
    "brightness": "brightness", "contrast": "contrast", "jpeg_compression": "jpeg_compression", "pixelate": "pixelate",
}  # fmt: skip


def interleaved_medians(fns: dict[str, object], repeats: int) -> dict[str, float | None]:
    """Median ms of each function, timed round-robin so that background load hits all alike.
    A function that raises (a broken transform of another library) gets None."""
    alive = {}
    for label, fn in fns.items():
        if fn is None:
            continue
        try:
            fn()  # warm-up (tables, caches)
            alive[label] = fn
        except Exception as exc:
            print(f"{label} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
    times: dict[str, list[float]] = {label: [] for label in alive}
    for _ in range(repeats):
        for label, fn in alive.items():
            start = time.perf_counter()
            fn()
            times[label].append(time.perf_counter() - start)
    return {label: (float(np.median(times[label]) * 1000) if label in times else None) for label in fns}


def frame(size: int) -> np.ndarray:
    from corrupt_bench.engine.frames import demo_clip

    tile = demo_clip(n_views=1, n_frames=1, size=256).images[0, 0]
    return cv2.resize(tile, (size, size), interpolation=cv2.INTER_LINEAR)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 1000])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    cv2.setNumThreads(1)
    corrupt = _import_imagecorruptions()
    rows = []
    names = [c.name for c in list_corruptions() if c.modality in ("pixel", "temporal")]
    for size in args.sizes:
        image = frame(size)
        c0 = (size - 224) / 2
        ctx_box = np.array([c0, c0, c0 + 224, c0 + 224])  # a 224 px person: spatial scale 1
        for name in names:
            corruption = get_corruption(name)
            row = corruption.table[SEVERITY].model_dump()
            counter = iter(range(10**9))

            def ours(corruption=corruption, image=image, box=ctx_box, counter=counter):
                i = next(counter)
                key = RngKey(0, corruption.name, corruption.version, SEVERITY, "S9", "Bench", "54138969", i)
                ctx = FrameContext("S9", "Bench", "54138969", i, 10**9, 50.0, image.shape[:2], box, None, key)
                return corruption.apply(image, corruption.sample(key.generator(), SEVERITY, ctx))

            ic = None
            if corrupt is not None and name in IMAGECORRUPTIONS_NAMES:

                def ic(n=IMAGECORRUPTIONS_NAMES[name], image=image):
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        return corrupt(image, corruption_name=n, severity=SEVERITY)

            aug = _albumentations_ops(name, row, size)
            album = None if aug is None else (lambda aug=aug, image=image: aug(image=image))
            copy = lambda image=image: np.copyto(np.empty_like(image), image)  # noqa: E731
            ms = interleaved_medians({"ours": ours, "ic": ic, "album": album, "copy": copy}, args.repeats)
            rows.append((name, size, ms["ours"], ms["ic"], ms["album"], ms["copy"]))
            print(f"{name} {size}: {ms}", file=sys.stderr)
    fmt = lambda v: "n/a" if v is None else f"{v:.2f}"  # noqa: E731
    print(f"\nSingle thread, severity {SEVERITY}, median of {args.repeats}; ours = sample + apply; timed round-robin with the others. "
          f"numpy {np.__version__}, OpenCV {cv2.__version__}.\n")  # fmt: skip
    print("| corruption | size | ours ms | imagecorruptions 1.1.2 ms | albumentations 2.0.8 ms | np.copyto ms | x faster than IC | ours / albumentations |")
    print("|---|---|---|---|---|---|---|---|")
    for name, size, ours_ms, ic_ms, al_ms, copy_ms in rows:
        speed = "n/a" if ic_ms is None else f"{ic_ms / ours_ms:.1f}"
        ratio = "n/a" if al_ms is None else f"{ours_ms / al_ms:.2f}"
        print(f"| {name} | {size} | {ours_ms:.2f} | {fmt(ic_ms)} | {fmt(al_ms)} | {copy_ms:.2f} | {speed} | {ratio} |")


if __name__ == "__main__":
    main()
