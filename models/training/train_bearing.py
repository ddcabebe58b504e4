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
    write_card(args.out, metrics, [str(c) for c in final.classes_], digest)
    print("exported", os.path.join(args.out, "model.onnx"), digest)


def write_card(out_dir, metrics, classes, digest):
    def table(res):
        lines = ["| held out | windows | window accuracy | recordings | recording accuracy |", "|---|---|---|---|---|"]
        for held, r in res.items():
            lines.append(f"| {held} | {r['windows']} | {r['window_accuracy']:.4f} | {r['recordings']} | {r['recording_accuracy']:.4f} |")
        return "\n".join(lines)

    def confusions(res):
        out = []
        for held, r in res.items():
            out.append(f"Held out {held} (rows true, columns predicted: {', '.join(LABELS)}):\n")
            out.append("```\n" + "\n".join(" ".join(f"{v:4d}" for v in row) for row in r["confusion"]) + "\n```\n")
        return "\n".join(out)

    card = f"""# Model card: bearing-cwru {VERSION}

Classifies rolling-element bearing condition from one accelerometer channel:
{', '.join(classes)} (the ONNX output order). sha256 of model.onnx: `{digest}`.

## Input and preprocessing
Windows of {bf.WINDOW} samples. For each window, 46 speed-normalised features (computed
in Rust by the server, in Python by `bearing_features.py`; the parity test checks both):
for 3 demodulation bands x 5 characteristic orders (BPFI 5.4152, BPFO 3.5848, 2xBSF
4.7135, FTF 0.39828, shaft 1) x 3 harmonics, the envelope-spectrum peak within +-2 % of
the expected frequency in dB over the median envelope level; plus log kurtosis. The
orders are those of the 6205-2RS JEM SKF bearing; a bearing with other geometry needs
its own orders in the manifest and a model trained for them. The sample rate must be at
least {2 * bf.BANDS[-1][1]:.0f} Hz; the shaft speed (rpm) must be given with the signal.

## Training data and licence
Case Western Reserve University Bearing Data Center, drive-end accelerometer at 12 kHz,
motor loads 0-3 hp, fault diameters 0.007 and 0.021 in, and the 0 hp normal baseline
(decimated from 48 kHz, first 70 % only). Public data; cite the CWRU Bearing Data
Center and Smith & Randall, MSSP 64-65 (2015) 100-131. {metrics['train_windows']} windows.

## Model
Standardisation + multinomial logistic regression (C = 0.3, balanced class weights),
scikit-learn, exported with skl2onnx. Seed {SEED}. Train: `python models/training/train_bearing.py`.

## Evaluation (split by recording, never by windows of one recording)
Window accuracy counts every {bf.WINDOW}-sample window; recording accuracy takes the
majority vote of a recording's windows (what an upload of a whole recording gets).
The single normal recording is split into time halves (first half trains, second half
tests): only 3 test windows, so the normal-class figures are weak evidence.

Leave one fault size out (the model never saw that defect size):

{table(metrics['leave_one_fault_size_out'])}

Leave one load out:

{table(metrics['leave_one_load_out'])}

{confusions(metrics['leave_one_fault_size_out'])}
## Limits
- One bearing type, one test rig, one sensor position: other machines need their own
  data. Only two fault sizes exist, so severity is not estimated; the features' peak
  levels (in the telemetry analysis) are shown instead.
- Ball faults are the hardest (the ball's defect rolls in and out of the load zone);
  most remaining errors are ball windows called normal.
- Only 5 normal windows exist; false alarms on healthy machines are not well measured.
- The decision threshold (`min_confidence` {0.6}) marks low-confidence verdicts `unknown`.
"""
    with open(os.path.join(out_dir, "MODEL_CARD.md"), "w") as f:
        f.write(card)


if __name__ == "__main__":
    main()
