"""Trains the bearing-fault model on CWRU vibration windows and exports it to ONNX.

    python models/training/train_bearing.py [--data ../shared/datasets/cwru] [--out models/bearing-cwru]

Seeded and deterministic. Splits are by recording, never by overlapping windows of one
recording: windows do not overlap, and every evaluation holds out whole recordings
(a fault size, or a motor load). The single normal recording (0 hp, 3.6 s) is split in
two halves by time, one for training and one for testing. A user's own data works the
same way: a manifest CSV with file,label,fault_size_in,load_hp,rpm,sample_rate_hz.
"""

import argparse
import csv
import hashlib
import json
import os
import sys

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import confusion_matrix
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bearing_features as bf  # noqa: E402

LABELS = ["normal", "inner_race", "ball", "outer_race"]
FAULT_IDS = {"normal": "bearing.normal", "inner_race": "bearing.inner_race", "ball": "bearing.ball", "outer_race": "bearing.outer_race"}
SEED = 20261122
VERSION = "1.0.0"


def load(data_dir):
    rows = list(csv.DictReader(open(os.path.join(data_dir, "manifest.csv"))))
    X, y, rec, size, load_hp, part = [], [], [], [], [], []
    for r in rows:
        x = np.fromfile(os.path.join(data_dir, r["file"]), "<f4")
        n = len(x) // bf.WINDOW
        for i in range(n):
            X.append(bf.features(x[i * bf.WINDOW : (i + 1) * bf.WINDOW], float(r["sample_rate_hz"]), float(r["rpm"])))
            y.append(r["label"])
            rec.append(r["file"])
            size.append(r["fault_size_in"])
            load_hp.append(r["load_hp"])
            part.append(0 if i < n // 2 else 1)  # time halves, for the lone normal recording
    return np.array(X), np.array(y), np.array(rec), np.array(size), np.array(load_hp), np.array(part)


def model():
    return make_pipeline(StandardScaler(), LogisticRegression(C=0.3, max_iter=5000, class_weight="balanced", random_state=SEED))


def evaluate(X, y, rec, groups, part):
    """Hold out each group value in turn; normal windows split by time halves."""
    results = {}
    normal = y == "normal"
    for held in sorted(set(groups[~normal])):
        te = (groups == held) & ~normal | (normal & (part == 1))
        tr = (groups != held) & ~normal | (normal & (part == 0))
        m = model().fit(X[tr], y[tr])
        pred = m.predict(X[te])
        window_acc = float((pred == y[te]).mean())
        # Recording-level: majority vote over a recording's windows.
        votes = {}
        for r, p, t in zip(rec[te], pred, y[te]):
            votes.setdefault(r, ([], t))[0].append(p)
        rec_ok = [max(set(v), key=v.count) == t for v, t in votes.values()]
        cm = confusion_matrix(y[te], pred, labels=LABELS).tolist()
        results[held] = {"windows": int(te.sum()), "window_accuracy": round(window_acc, 4),
                         "recordings": len(rec_ok), "recording_accuracy": round(float(np.mean(rec_ok)), 4), "confusion": cm}
    return results


def export(m, out_dir, n_features, metrics):
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType

    onx = to_onnx(m, initial_types=[("features", FloatTensorType([None, n_features]))],
                  options={id(m.steps[-1][1]): {"zipmap": False}}, target_opset={"": 17, "ai.onnx.ml": 3})
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "model.onnx")
    with open(path, "wb") as f:
        f.write(onx.SerializeToString())
    digest = hashlib.sha256(open(path, "rb").read()).hexdigest()
    manifest = {
        "name": "bearing-cwru",
        "version": VERSION,
        "task": "bearing_fault_vibration",
        "model_file": "model.onnx",
        "sha256": digest,
        "input": {"name": "features", "dtype": "float32", "shape": [-1, n_features]},
        "outputs": {"probabilities": {"name": "probabilities", "dtype": "float32", "shape": [-1, len(LABELS)]}},
        "preprocessing": {
            "kind": "envelope_order_features", "version": 1, "window_samples": bf.WINDOW,
            "min_sample_rate_hz": 2 * bf.BANDS[-1][1], "bands_hz": [list(b) for b in bf.BANDS],
            "orders": {name: o for name, o in bf.ORDERS}, "harmonics": list(bf.HARMONICS),
            "tolerance": bf.TOLERANCE, "noise_orders": list(bf.NOISE_ORDERS), "feature_names": bf.FEATURE_NAMES,
        },
        # The ONNX probabilities follow the classifier's class order (sorted), not LABELS.
        "labels": [{"index": i, "name": str(l), "fault_id": FAULT_IDS[str(l)]} for i, l in enumerate(m.classes_)],
        "thresholds": {"min_confidence": 0.6},
        "metrics": metrics,
    }
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    return digest


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.path.join(here, "../../../shared/datasets/cwru"))
    ap.add_argument("--out", default=os.path.join(here, "../bearing-cwru"))
    args = ap.parse_args()
    np.random.seed(SEED)
    X, y, rec, size, load_hp, part = load(args.data)
    print(f"{len(X)} windows of {bf.WINDOW} samples from {len(set(rec))} recordings")
    by_size = evaluate(X, y, rec, size, part)
    by_load = evaluate(X, y, rec, load_hp, part)
    for name, res in (("fault size", by_size), ("load hp", by_load)):
        for held, r in res.items():
            print(f"held-out {name} {held}: window accuracy {r['window_accuracy']:.4f} ({r['windows']} windows), "
                  f"recording accuracy {r['recording_accuracy']:.4f} ({r['recordings']} recordings)")
            print("   confusion (rows true, cols predicted; " + ", ".join(LABELS) + "):", r["confusion"])
    final = model().fit(X, y)
    metrics = {"leave_one_fault_size_out": by_size, "leave_one_load_out": by_load, "train_windows": int(len(X))}
    digest = export(final, args.out, X.shape[1], metrics)
    print("exported", os.path.join(args.out, "model.onnx"), digest)


if __name__ == "__main__":
    main()
