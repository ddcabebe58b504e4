"""Trains the surface-defect model on NEU images and exports one ONNX graph.

    python models/training/train_surface.py [--data ../shared/datasets/images] [--out models/surface-neu]

Graph: image (N,1,128,128 in [0,1]) -> fixed Gabor/LoG texture features (see
surface_features.py) -> log -> standardise -> multinomial logistic regression ->
`probabilities` (N,6), and `ood_distance` (N): the smallest squared Mahalanobis distance
of the standardised features to a class (each class with its own shrunk covariance). A frame is
`unknown` when that distance is above the calibrated threshold or the top probability
is below `min_confidence`.

Evaluation: a seeded, stratified 20 % of the images is held out from everything
(training, scaler, covariance, threshold); 5-fold cross-validation on the rest is
reported too. Out-of-distribution frames are crops of ordinary photographs shipped with
scikit-image and scikit-learn (people, faces, a cat, a street, objects, rooms and
landscapes) and, reported separately, natural textures (brick, grass, gravel, coins).
A user's own data works the same way: `--data` takes a folder with a manifest.csv of
file,label (one sub-folder per class is also accepted).
"""

import argparse
import csv
import hashlib
import json
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from PIL import Image
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import confusion_matrix
from sklearn.model_selection import StratifiedKFold, cross_val_score, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import surface_features as sf  # noqa: E402

SEED = 20261122
VERSION = "1.0.0"
C = 10.0
FAULT_IDS = {
    "crazing": "surface.crazing", "inclusion": "surface.inclusion", "patches": "surface.patches",
    "pitted_surface": "surface.pitted", "rolled-in_scale": "surface.rolled_in_scale", "scratches": "surface.scratches",
}


def read_dataset(data_dir):
    manifest = os.path.join(data_dir, "manifest.csv")
    if os.path.exists(manifest):
        rows = [(r["file"], r["label"]) for r in csv.DictReader(open(manifest))]
    else:
        rows = [(os.path.join(c, f), c) for c in sorted(os.listdir(data_dir)) if os.path.isdir(os.path.join(data_dir, c))
                for f in sorted(os.listdir(os.path.join(data_dir, c)))]
    imgs = np.concatenate([sf.preprocess(np.array(Image.open(os.path.join(data_dir, f)))) for f, _ in rows])
    return imgs, np.array([l for _, l in rows]), rows


def feature_model():
    nodes, inits = sf.feature_graph_nodes(helper, TensorProto, numpy_helper, sf.filter_bank())
    g = helper.make_graph(nodes, "features", [helper.make_tensor_value_info("image", TensorProto.FLOAT, [None, 1, sf.SIZE, sf.SIZE])],
                          [helper.make_tensor_value_info("feats", TensorProto.FLOAT, [None, None])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)


def run_features(model, imgs):
    s = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    f = np.concatenate([s.run(None, {"image": imgs[i : i + 64]})[0] for i in range(0, len(imgs), 64)])
    return np.log(f + 1e-6)


def ood_frames():
    """Crops of ordinary photographs (and, separately, natural textures) as camera frames."""
    import skimage.data as skd
    from sklearn.datasets import load_sample_images

    rng = np.random.default_rng(SEED)
    data = os.path.dirname(skd.__file__)

    def read(name):
        return np.array(Image.open(os.path.join(data, name)).convert("RGB"))

    scenes = {n: read(n) for n in ("astronaut.png", "camera.png", "chelsea.png", "coffee.png", "rocket.jpg",
                                    "motorcycle_left.png", "horse.png", "clock_motion.png", "page.png")}
    for i, im in enumerate(load_sample_images().images):
        scenes[f"sklearn_{i}"] = im
    textures = {n: read(n) for n in ("brick.png", "grass.png", "gravel.png", "coins.png")}

    def crops(img, k):
        img = np.asarray(img)
        if img.dtype == bool:
            img = img.astype(np.uint8) * 255
        h, w = img.shape[:2]
        out = [sf.preprocess(img)]
        for _ in range(k):
            s = int(rng.uniform(0.35, 1.0) * min(h, w))
            y, x = rng.integers(0, h - s + 1), rng.integers(0, w - s + 1)
            out.append(sf.preprocess(img[y : y + s, x : x + s]))
        return np.concatenate(out)

    faces = np.load(os.path.join(data, "lfw_subset.npy"))[:100]
    face_frames = np.concatenate([sf.preprocess((f * 255).astype(np.uint8)) for f in faces])
    return {"scenes": np.concatenate([crops(v, 24) for v in scenes.values()]), "faces": face_frames,
            "textures": np.concatenate([crops(v, 24) for v in textures.values()])}


def build(fmodel, scaler, clf, Ws, means, out_dir, labels, threshold, min_conf, metrics):
    g = fmodel.graph
    F = int(scaler.mean_.shape[0])
    inits = [
        numpy_helper.from_array(np.array(1e-6, np.float32), "feps"),
        numpy_helper.from_array(scaler.mean_.astype(np.float32), "smean"),
        numpy_helper.from_array(scaler.scale_.astype(np.float32), "sscale"),
        numpy_helper.from_array(clf.coef_.T.astype(np.float32), "coef"),
        numpy_helper.from_array(clf.intercept_.astype(np.float32), "intercept"),
        numpy_helper.from_array(means.astype(np.float32)[None], "cmeans"),  # (1, C, F)
        numpy_helper.from_array(Ws.astype(np.float32), "whiten"),  # (C, F, F)
        numpy_helper.from_array(np.array([1], np.int64), "ax1"),
        numpy_helper.from_array(np.array([2], np.int64), "ax2"),
        numpy_helper.from_array(np.array([2, 3], np.int64), "ax23"),
    ]
    nodes = list(g.node) + [
        helper.make_node("Add", ["feats", "feps"], ["feats_eps"]),
        helper.make_node("Log", ["feats_eps"], ["logf"]),
        helper.make_node("Sub", ["logf", "smean"], ["zfc"]),
        helper.make_node("Div", ["zfc", "sscale"], ["zf"]),
        helper.make_node("MatMul", ["zf", "coef"], ["zw"]),
        helper.make_node("Add", ["zw", "intercept"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
        helper.make_node("Unsqueeze", ["zf", "ax1"], ["z3"]),  # (N, 1, F)
        helper.make_node("Sub", ["z3", "cmeans"], ["dz"]),  # (N, C, F)
        helper.make_node("Unsqueeze", ["dz", "ax2"], ["dz4"]),  # (N, C, 1, F)
        helper.make_node("MatMul", ["dz4", "whiten"], ["wz"]),  # (N, C, 1, F)
        helper.make_node("Mul", ["wz", "wz"], ["wz2"]),
        helper.make_node("ReduceSum", ["wz2", "ax23"], ["dist"], keepdims=0),  # (N, C)
        helper.make_node("ReduceMin", ["dist"], ["ood_distance"], axes=[1], keepdims=0),  # (N,)
    ]
    graph = helper.make_graph(
        nodes, "surface_neu", [helper.make_tensor_value_info("image", TensorProto.FLOAT, [None, 1, sf.SIZE, sf.SIZE])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, len(labels)]),
         helper.make_tensor_value_info("ood_distance", TensorProto.FLOAT, [None])],
        list(g.initializer) + inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    model.producer_name = "fixline/train_surface.py"
    onnx.checker.check_model(model)
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "model.onnx")
    with open(path, "wb") as f:
        f.write(model.SerializeToString())
    digest = hashlib.sha256(open(path, "rb").read()).hexdigest()
    manifest = {
        "name": "surface-neu", "version": VERSION, "task": "surface_defect_image", "model_file": "model.onnx", "sha256": digest,
        "input": {"name": "image", "dtype": "float32", "shape": [-1, 1, sf.SIZE, sf.SIZE]},
        "outputs": {"probabilities": {"name": "probabilities", "dtype": "float32", "shape": [-1, len(labels)]},
                    "ood_distance": {"name": "ood_distance", "dtype": "float32", "shape": [-1]}},
        "preprocessing": {"kind": "luma_center_crop_box_resize", "version": 1, "image_size": sf.SIZE,
                          "luma_weights": list(sf.LUMA), "scale": 1.0 / 255.0},
        "labels": [{"index": i, "name": l, "fault_id": FAULT_IDS.get(l, l)} for i, l in enumerate(labels)],
        "thresholds": {"min_confidence": min_conf, "max_ood_distance": float(threshold)},
        "metrics": metrics,
    }
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    return path, digest


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.path.join(here, "../../../shared/datasets/images"))
    ap.add_argument("--out", default=os.path.join(here, "../surface-neu"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    imgs, y, rows = read_dataset(args.data)
    labels = sorted(set(y))
    fmodel = feature_model()
    X = run_features(fmodel, imgs)
    idx = np.arange(len(y))
    tr, te = train_test_split(idx, test_size=0.2, stratify=y, random_state=SEED)
    cv = cross_val_score(make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=10000)), X[tr], y[tr],
                         cv=StratifiedKFold(5, shuffle=True, random_state=SEED))
    scaler = StandardScaler().fit(X[tr])
    clf = LogisticRegression(C=C, max_iter=10000).fit(scaler.transform(X[tr]), y[tr])
    assert list(clf.classes_) == labels
    Z = scaler.transform(X)
    def class_model(Zt, yt):
        means = np.stack([Zt[yt == l].mean(0) for l in labels])
        Ws = []
        for i, l in enumerate(labels):
            cov = np.cov((Zt[yt == l] - means[i]).T)
            cov = 0.8 * cov + 0.2 * np.eye(len(cov)) * np.trace(cov) / len(cov)
            vals, vecs = np.linalg.eigh(cov)
            Ws.append(vecs @ np.diag(vals ** -0.5) @ vecs.T)
        return means, np.stack(Ws)

    def distance(Zs, means, Ws):
        d = Zs[:, None, None, :] - means[None, :, None, :]
        return ((d @ Ws[None]) ** 2).sum((-1, -2)).min(1)

    means, Ws = class_model(Z[tr], y[tr])

    def dist(Zs):
        return distance(Zs, means, Ws)

    # Threshold: the 99.5th percentile of out-of-fold distances of the training images
    # (each fold measured against class models fitted without it, as new photos will
    # be), so about 1 in 200 real defects goes to a human as `unknown` rather than risk
    # confident nonsense.
    oof = np.zeros(len(tr))
    for fit, held in StratifiedKFold(5, shuffle=True, random_state=SEED).split(Z[tr], y[tr]):
        oof[held] = distance(Z[tr][held], *class_model(Z[tr][fit], y[tr][fit]))
    threshold = float(np.quantile(oof, 0.995))
    min_conf = 0.5
    pred = clf.predict(Z[te])
    prob = clf.predict_proba(Z[te]).max(1)
    accepted = (dist(Z[te]) <= threshold) & (prob >= min_conf)
    test_acc = float((pred == y[te]).mean())
    ood = {}
    for name, frames in ood_frames().items():
        Zo = scaler.transform(run_features(fmodel, frames))
        po = clf.predict_proba(Zo).max(1)
        called_defect = (dist(Zo) <= threshold) & (po >= min_conf)
        ood[name] = {"frames": int(len(frames)), "called_a_defect": int(called_defect.sum()),
                     "rate": round(float(called_defect.mean()), 4)}
    metrics = {
        "held_out_images": int(len(te)), "held_out_accuracy": round(test_acc, 4),
        "held_out_confusion": confusion_matrix(y[te], pred, labels=labels).tolist(),
        "held_out_accepted_rate": round(float(accepted.mean()), 4),
        "held_out_accuracy_when_accepted": round(float((pred[accepted] == y[te][accepted]).mean()), 4),
        "cv5_accuracy_mean": round(float(cv.mean()), 4), "cv5_accuracy": [round(float(c), 4) for c in cv],
        "ood_false_defect": ood, "train_images": int(len(tr)),
    }
    print(json.dumps(metrics, indent=1))
    with open(os.path.join(args.out, "heldout.csv"), "w") as f:
        f.write("file,label\n")
        for i in sorted(te):
            f.write(f"{rows[i][0]},{y[i]}\n")
    path, digest = build(fmodel, scaler, clf, Ws, means, args.out, labels, threshold, min_conf, metrics)
    # The exported graph must reproduce the sklearn pipeline.
    s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    p, d = s.run(None, {"image": imgs[te[:32]]})
    assert np.allclose(p, clf.predict_proba(Z[te[:32]]), atol=1e-4), "ONNX probabilities differ from sklearn"
    assert np.allclose(d, dist(Z[te[:32]]), rtol=1e-3, atol=1e-2), "ONNX distance differs"
    write_card(args.out, metrics, labels, digest, threshold, min_conf)
    print("exported", path, digest)


def write_card(out_dir, m, labels, digest, threshold, min_conf):
    cm = "\n".join(" ".join(f"{v:4d}" for v in row) for row in m["held_out_confusion"])
    ood = "\n".join(f"| {k} | {v['frames']} | {v['called_a_defect']} | {v['rate']:.1%} |" for k, v in m["ood_false_defect"].items())
    card = f"""# Model card: surface-neu {VERSION}

Classifies a photo of a steel surface into six defect classes: {', '.join(labels)},
or `unknown`. sha256 of model.onnx: `{digest}`.

## Input and preprocessing
8-bit luma (Rec. 601 weights), centre crop to a square, area-average resampling to
{sf.SIZE}x{sf.SIZE}, scaled to [0, 1] (the server does this in Rust; the parity test holds
it to `surface_features.py`). Inside the graph: per-image standardisation, a fixed bank
of 18 Gabor and 2 Laplacian-of-Gaussian filters at two scales, mean-absolute and RMS
pooling (80 features), log, standardisation, multinomial logistic regression (C = {C}).
A second output, `ood_distance`, is the smallest Mahalanobis distance to a class
(per-class covariance, shrunk); above {threshold:.1f}, or with a top probability below
{min_conf}, the verdict is `unknown`.

## Training data and licence
NEU surface defect database (Northeastern University; K. Song and Y. Yan, Applied
Surface Science 285 (2013) 858-864): 1,442 grey 200x200 images of hot-rolled steel
strip, about 240 per class. **Licence: stated by its authors for academic research;
commercial use is unclear.** Anyone deploying this model commercially must clear that
or retrain on their own images (`train_surface.py --data <folder>`).

## Split and metrics
A seeded, stratified 20 % ({m['held_out_images']} images, listed in heldout.csv) is held
out from everything: training, scaler, covariances and the threshold.

- Held-out accuracy: **{m['held_out_accuracy']:.2%}**; 5-fold cross-validation on the
  rest: {m['cv5_accuracy_mean']:.2%} ({', '.join(f'{c:.3f}' for c in m['cv5_accuracy'])}).
- Held-out images accepted (not `unknown`): {m['held_out_accepted_rate']:.2%}; accuracy
  of the accepted ones: {m['held_out_accuracy_when_accepted']:.2%}.

Held-out confusion matrix (rows true, columns predicted: {', '.join(labels)}):

```
{cm}
```

## Ordinary camera frames (out of distribution)
Crops of ordinary photographs shipped with scikit-image and scikit-learn (people, a cat,
a street, objects, a page of text, landscapes), 100 faces (LFW subset), and natural
textures (brick, grass, gravel, coins), reported separately. How often each was wrongly
called a defect:

| source | frames | called a defect | rate |
|---|---|---|---|
{ood}

This falls short: roughly half of the ordinary scene crops still pass as a defect, and
textures more often. Grey-scale texture statistics cannot tell a close-up of a wall from
a steel surface. The expert sees every verdict with its probability and distance, and
the live pipeline should only diagnose frames the expert points at (snapshots).

## Limits
- Hot-rolled steel strip under the NEU lighting; machined or painted surfaces,
  other lighting and motion blur are untested.
- No defect localisation: one label per image.
"""
    with open(os.path.join(out_dir, "MODEL_CARD.md"), "w") as f:
        f.write(card)


if __name__ == "__main__":
    main()
