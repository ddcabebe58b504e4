"""Training outliers for the surface model's outlier detector (outlier exposure).

Images from Debian packages (bookworm), fetched with the ordinary Debian client and never
committed: desktop wallpapers (photographs and artwork), GIMP's pattern tiles (wood,
stone, fabric, paper...) and GIMPressionist papers, and the OpenCV documentation images
(sample photos, tutorial figures). They are a source disjoint from the evaluation frames
of train_surface.py (scikit-image / scikit-learn photos, LFW faces, scikit-image
textures); `check_disjoint` drops any image that matches one of those anyway.

    fetch(cache)          apt-get download + dpkg-deb -x into cache/ (once; kept there)
    sources(cache)        sorted list of (group, path) of usable images
    crops(sources, rng)   random crops (scale 0.2-1.0 of the short side, flips, quarter
                          turns, low-contrast / dark / bright / blurred / noisy variants),
                          each run through the Rust-mirrored preprocess()

Everything is seeded and sorted, so the same packages give the same crops.
"""

import glob
import hashlib
import os
import subprocess
import sys

import numpy as np
from PIL import Image, ImageFilter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import surface_features as sf  # noqa: E402

# Debian bookworm versions the bundled model was trained with; if the archive no longer
# has one, the candidate version is taken (and the result will differ slightly).
PACKAGES = {
    "gnome-backgrounds": "43.1-1",
    "mate-backgrounds": "1.26.0-1",
    "plasma-workspace-wallpapers": "4:5.27.5-2",
    "desktop-base": "12.0.6+nmu1~deb12u1",
    "gimp-data": "2.10.34-1+deb12u10",
    "opencv-doc": "4.6.0+dfsg-12",
}
LICENCES = {
    "gnome-backgrounds": "CC-BY-SA-3.0 and others (see its copyright file)",
    "mate-backgrounds": "GPL-2+ (some CC-BY-SA)",
    "plasma-workspace-wallpapers": "GPL-2+ / LGPL",
    "desktop-base": "GPL-2+ and CC-BY-SA-3.0",
    "gimp-data": "GPL-3+ (patterns), some CC-BY-SA / CC0",
    "opencv-doc": "Apache-2.0 / BSD-3-Clause (sample data of various origins)",
}
MIN_SIDE = 128  # smaller images are icons and diagrams' bits: skipped (GIMP tiles are tiled instead)
TILED = ("gimp-pattern", "gimp-paper")  # seamless tiles
MAX_SIDE = 800  # sources are box-shrunk to this short side first (crops of >= 0.2 still have >= 160 px)
# Crops per source image, by group (groups are unequal in size and in variety).
CROPS = {"wallpaper": 48, "gimp-pattern": 40, "gimp-paper": 24, "opencv-sample": 16, "opencv-figure": 3, "desktop-base": 4}


def fetch(cache):
    """Downloads and unpacks the packages into cache/ (skipped when already there). Returns
    {package: (version, sha256 of the .deb)}."""
    debs, root = os.path.join(cache, "debs"), os.path.join(cache, "x")
    os.makedirs(debs, exist_ok=True)
    info = {}
    for pkg, ver in PACKAGES.items():
        have = sorted(glob.glob(os.path.join(debs, f"{pkg}_*.deb")))
        if not have:
            r = subprocess.run(["apt-get", "download", f"{pkg}={ver}"], cwd=debs)
            if r.returncode != 0:
                print(f"warning: {pkg}={ver} not available, taking the candidate version", file=sys.stderr)
                subprocess.run(["apt-get", "download", pkg], cwd=debs, check=True)
            have = sorted(glob.glob(os.path.join(debs, f"{pkg}_*.deb")))
        deb = have[-1]
        dest = os.path.join(root, pkg)
        if not os.path.isdir(dest):
            os.makedirs(dest)
            subprocess.run(["dpkg-deb", "-x", deb, dest], check=True)
        version = os.path.basename(deb).split("_")[1].replace("%3a", ":")
        info[pkg] = (version, hashlib.sha256(open(deb, "rb").read()).hexdigest())
    return info


def read_gimp_pattern(path):
    """GIMP .pat: big-endian header (size, version, width, height, bytes, 'GPAT', name), pixels."""
    b = open(path, "rb").read()
    hsize, _, w, h, depth = np.frombuffer(b[:20], ">u4")
    px = np.frombuffer(b[hsize : hsize + w * h * depth], np.uint8).reshape(h, w, depth)
    return px[..., 0] if depth in (1, 2) else px[..., :3]


def load(path):
    if path.endswith(".pat"):
        return read_gimp_pattern(path)
    im = Image.open(path)
    im.load()
    if im.mode in ("RGBA", "LA", "P", "PA"):  # transparency over mid-grey
        im = im.convert("RGBA")
        bg = Image.new("RGBA", im.size, (128, 128, 128, 255))
        im = Image.alpha_composite(bg, im)
    return np.array(im.convert("RGB") if im.mode not in ("L", "RGB") else im)


def sources(cache):
    x = os.path.join(cache, "x")
    groups = []
    plasma = {}
    for p in sorted(glob.glob(f"{x}/plasma-workspace-wallpapers/usr/share/wallpapers/*/contents/images*/*")):
        plasma.setdefault(os.path.dirname(p), []).append(p)
    for d, ps in sorted(plasma.items()):  # one resolution per wallpaper: the largest
        groups.append(("wallpaper", max(ps, key=lambda p: Image.open(p).size[0] * Image.open(p).size[1])))
    for pat in ("gnome-backgrounds/usr/share/backgrounds/**/*.webp", "mate-backgrounds/usr/share/backgrounds/**/*.*"):
        groups += [("wallpaper", p) for p in sorted(glob.glob(f"{x}/{pat}", recursive=True)) if not p.endswith(".xml")]
    groups += [("gimp-pattern", p) for p in sorted(glob.glob(f"{x}/gimp-data/usr/share/gimp/2.0/patterns/**/*.pat", recursive=True))]
    groups += [("gimp-paper", p) for p in sorted(glob.glob(f"{x}/gimp-data/usr/share/gimp/2.0/gimpressionist/Paper/*.pgm"))]
    ocv = f"{x}/opencv-doc/usr/share/doc/opencv-doc"
    groups += [("opencv-sample", p) for p in sorted(glob.glob(f"{ocv}/examples/**/*.*", recursive=True))
               if p.lower().endswith((".jpg", ".png"))]
    groups += [("opencv-figure", p) for p in sorted(glob.glob(f"{ocv}/opencv4/html/**/*.*", recursive=True))
               if p.lower().endswith((".jpg", ".png"))]
    groups += [("desktop-base", p) for p in sorted(glob.glob(f"{x}/desktop-base/usr/share/**/*.png", recursive=True))]
    out = []
    for g, p in groups:
        try:
            im = load(p)
        except Exception:
            continue
        if g in TILED or min(im.shape[:2]) >= MIN_SIDE:
            if im.std() > 2.0:  # flat fills say nothing
                out.append((g, p))
    return out


def thumb(img, n=32):
    """Zero-mean unit-norm n x n luma thumbnail, for near-duplicate checks."""
    t = sf.preprocess(img)[0, 0]
    t = t.reshape(n, sf.SIZE // n, n, sf.SIZE // n).mean((1, 3))
    t = t - t.mean()
    return t.ravel() / (np.linalg.norm(t) + 1e-9)


def check_disjoint(srcs, eval_images, limit=0.92):
    """Drops sources whose centre thumbnail, or a flipped one, correlates above `limit` with an
    evaluation image's (whole-image near-duplicates). Returns (kept, dropped)."""
    ev = np.stack([thumb(e) for e in eval_images])
    kept, dropped = [], []
    for g, p in srcs:
        im = load(p)
        ts = [thumb(im), thumb(im[:, ::-1]), thumb(im[::-1])]
        c = max(float((ev @ t).max()) for t in ts)
        (dropped if c > limit else kept).append((g, p))
    return kept, dropped


def shrink(img, side=MAX_SIDE):
    h, w = img.shape[:2]
    if min(h, w) <= side:
        return img
    f = side / min(h, w)
    return np.array(Image.fromarray(img).resize((max(1, round(w * f)), max(1, round(h * f))), Image.BOX))


def variant(crop, rng):
    """Photometric variants a camera gives: as is, low contrast, dark, bright, gamma, defocus, noise."""
    g = crop.astype(np.float64)
    if g.ndim == 3:
        g = sf.LUMA[0] * g[..., 0] + sf.LUMA[1] * g[..., 1] + sf.LUMA[2] * g[..., 2]
    k = rng.integers(0, 7)
    if k == 1:  # low contrast around a random grey
        g = rng.uniform(60, 190) + rng.uniform(0.1, 0.5) * (g - g.mean())
    elif k == 2:  # dark
        g = g * rng.uniform(0.2, 0.6)
    elif k == 3:  # bright / washed out
        g = 255 - (255 - g) * rng.uniform(0.2, 0.6)
    elif k == 4:
        g = 255 * (g / 255) ** rng.uniform(0.5, 2.0)
    elif k == 5:
        g = np.array(Image.fromarray(g.clip(0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(rng.uniform(0.8, 3.0))), np.float64)
    elif k == 6:
        g = g + rng.normal(0, rng.uniform(2, 12), g.shape)
    return np.floor(g + 0.5).clip(0, 255).astype(np.uint8)


def crops_of(img, n, rng, tile=False):
    if tile:  # GIMP patterns tile seamlessly: a 4x4 wall of the tile
        reps = max(2, int(np.ceil(512 / min(img.shape[:2]))))
        img = np.tile(img, (reps, reps) + (1,) * (img.ndim - 2))
    img = shrink(img)
    h, w = img.shape[:2]
    out = []
    for _ in range(n):
        s = max(16, int(rng.uniform(0.2, 1.0) * min(h, w)))
        y, x = rng.integers(0, h - s + 1), rng.integers(0, w - s + 1)
        c = img[y : y + s, x : x + s]
        if rng.random() < 0.5:
            c = c[:, ::-1]
        if rng.random() < 0.5:
            c = c[::-1]
        c = np.rot90(c, rng.integers(0, 4))
        out.append(sf.preprocess(variant(np.ascontiguousarray(c), rng)))
    return out


def crops(srcs, seed):
    """-> frames (M,1,S,S) float32, group id per frame (index into srcs), group name per frame."""
    rng = np.random.default_rng(seed)
    frames, src_id, group = [], [], []
    for i, (g, p) in enumerate(srcs):
        fs = crops_of(load(p), CROPS[g], rng, tile=(g in TILED))
        frames += fs
        src_id += [i] * len(fs)
        group += [g] * len(fs)
    return np.concatenate(frames), np.array(src_id), np.array(group)
