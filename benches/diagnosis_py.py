"""Python reference for benches/diagnosis.rs: the same models, inputs and thread counts
through Python onnxruntime, with numpy preprocessing and with OpenCV preprocessing, and
the INT8 (dynamic quantization) variant of each model: speed and accuracy change.

    .deps/venv/bin/pip install opencv-python-headless==5.0.0.93   (bench only)
"""

import csv
import io
import json
import os
import sys
import tempfile
import time

import numpy as np
import onnxruntime as ort
from PIL import Image

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, os.path.join(ROOT, "models/training"))
import bearing_features as bf  # noqa: E402
import surface_features as sf  # noqa: E402

ITERS = int(sys.argv[1]) if len(sys.argv) > 1 else 500
DATA = os.path.join(ROOT, "../shared/datasets")


def session(path, threads):
    o = ort.SessionOptions()
    o.intra_op_num_threads = threads
    return ort.InferenceSession(path, o, providers=["CPUExecutionProvider"])


def bench(fn, iters=ITERS):
    for _ in range(iters // 10):
        fn()
    lat = []
    t0 = time.perf_counter()
    for _ in range(iters):
        t = time.perf_counter()
        fn()
        lat.append(time.perf_counter() - t)
    total = time.perf_counter() - t0
    lat.sort()
    return lat[len(lat) // 2] * 1e3, lat[int((len(lat) - 1) * 0.99)] * 1e3, iters / total


def frame():
    w, h = 640, 480
    i = np.arange(w * h, dtype=np.uint64)
    return (((i % w) * 3 + (i // w) * 7 + (i * 2654435761) % 23) % 256).astype(np.uint8).reshape(h, w)


def main():
    rows = []
    surface = os.path.join(ROOT, "models/surface-neu/model.onnx")
    bearing = os.path.join(ROOT, "models/bearing-cwru/model.onnx")
    f = frame()
    png = open(os.path.join(DATA, "images/scratches/scratches_4.png"), "rb").read()
    sig = np.fromfile(os.path.join(DATA, "cwru/de12k/105_IR007_0hp.f32"), "<f4")
    try:
        import cv2
    except ImportError:
        cv2 = None
    for threads in (1, 2):
        s = session(surface, threads)
        x = sf.preprocess(f)
        rows.append(("surface-neu: bare inference", threads, *bench(lambda: s.run(None, {"image": x}))))
        rows.append(("surface-neu: frame pipeline, numpy preprocessing", threads, *bench(lambda: s.run(None, {"image": sf.preprocess(f)}))))
        if cv2 is not None:
            def cv_pipeline():
                side = min(f.shape)
                top, left = (f.shape[0] - side) // 2, (f.shape[1] - side) // 2
                r = cv2.resize(f[top:top + side, left:left + side], (sf.SIZE, sf.SIZE), interpolation=cv2.INTER_AREA)
                s.run(None, {"image": (r.astype(np.float32) / 255.0)[None, None]})
            rows.append(("surface-neu: frame pipeline, OpenCV preprocessing", threads, *bench(cv_pipeline)))

            def cv_photo():
                g = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_GRAYSCALE)
                r = cv2.resize(g, (sf.SIZE, sf.SIZE), interpolation=cv2.INTER_AREA)
                s.run(None, {"image": (r.astype(np.float32) / 255.0)[None, None]})
            rows.append(("surface-neu: photo pipeline, OpenCV decode + preprocessing", threads, *bench(cv_photo)))
        rows.append(("surface-neu: photo pipeline, PIL decode + numpy", threads,
                     *bench(lambda: s.run(None, {"image": sf.preprocess(np.array(Image.open(io.BytesIO(png))))}))))
        b = session(bearing, threads)
        feats = bf.features(sig[: bf.WINDOW], 12000.0, 1797.0)[None]
        rows.append(("bearing-cwru: bare inference", threads, *bench(lambda: b.run(["probabilities"], {"features": feats}))))
        rows.append(("bearing-cwru: window pipeline, numpy features", threads,
                     *bench(lambda: b.run(["probabilities"], {"features": bf.features(sig[: bf.WINDOW], 12000.0, 1797.0)[None]}))))
    print(f"## Python onnxruntime {ort.__version__}, numpy {np.__version__}" + (f", OpenCV {cv2.__version__}" if cv2 else " (OpenCV not installed)") + f", {ITERS} iterations each\n")
    print("| what | intra threads | p50 ms | p99 ms | per second |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]:.3f} | {r[3]:.3f} | {r[4]:.0f} |")
    int8()


def int8():
    from onnxruntime.quantization import QuantType, quantize_dynamic

    print("\n## INT8 (dynamic quantization of weights) vs FP32, 1 thread\n")
    print("| model | FP32 p50 ms | INT8 p50 ms | speed-up | FP32 accuracy | INT8 accuracy |\n|---|---|---|---|---|---|")
    tmp = tempfile.mkdtemp()
    # Surface: accuracy on the held-out images.
    held = list(csv.DictReader(open(os.path.join(ROOT, "models/surface-neu/heldout.csv"))))
    labels = [l["name"] for l in json.load(open(os.path.join(ROOT, "models/surface-neu/manifest.json")))["labels"]]
    xs = np.concatenate([sf.preprocess(np.array(Image.open(os.path.join(DATA, "images", r["file"])))) for r in held])
    ys = np.array([labels.index(r["label"]) for r in held])
    fp = os.path.join(ROOT, "models/surface-neu/model.onnx")
    q = os.path.join(tmp, "surface-int8.onnx")
    quantize_dynamic(fp, q, weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Gemm", "Conv"])
    res = []
    for path in (fp, q):
        s = session(path, 1)
        acc = float((s.run(["probabilities"], {"image": xs})[0].argmax(1) == ys).mean())
        res.append((bench(lambda: s.run(None, {"image": xs[:1]}), ITERS // 2)[0], acc))
    print(f"| surface-neu | {res[0][0]:.3f} | {res[1][0]:.3f} | {res[0][0] / res[1][0]:.2f}x | {res[0][1]:.2%} | {res[1][1]:.2%} |")
    # Bearing: accuracy on every window of every recording (training data: the change is what matters).
    man = list(csv.DictReader(open(os.path.join(DATA, "cwru/manifest.csv"))))
    blabels = [l["name"] for l in json.load(open(os.path.join(ROOT, "models/bearing-cwru/manifest.json")))["labels"]]
    X, Y = [], []
    for r in man:
        x = np.fromfile(os.path.join(DATA, "cwru", r["file"]), "<f4")
        for i in range(len(x) // bf.WINDOW):
            X.append(bf.features(x[i * bf.WINDOW:(i + 1) * bf.WINDOW], 12000.0, float(r["rpm"])))
            Y.append(blabels.index(r["label"]))
    X, Y = np.stack(X), np.array(Y)
    fp = os.path.join(ROOT, "models/bearing-cwru/model.onnx")
    q = os.path.join(tmp, "bearing-int8.onnx")
    try:
        quantize_dynamic(fp, q, weight_type=QuantType.QInt8)
    except ValueError as e:
        # skl2onnx writes a LinearClassifier (ai.onnx.ml): no MatMul/Conv to quantize.
        print(f"| bearing-cwru | n/a | n/a | n/a | - | - (not quantizable: {e}; the model is one ai.onnx.ml LinearClassifier, 46x4 weights) |")
        return
    res = []
    for path in (fp, q):
        s = session(path, 1)
        acc = float((s.run(["probabilities"], {"features": X})[0].argmax(1) == Y).mean())
        res.append((bench(lambda: s.run(["probabilities"], {"features": X[:1]}), ITERS // 2)[0], acc))
    print(f"| bearing-cwru | {res[0][0]:.3f} | {res[1][0]:.3f} | {res[0][0] / res[1][0]:.2f}x | {res[0][1]:.2%} | {res[1][1]:.2%} |")


if __name__ == "__main__":
    main()
