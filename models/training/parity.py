"""Reference outputs for the parity test (tests/api/diagnosis.rs).

    parity.py image <file> <model_dir>
    parity.py vibration <f32 file> <sample_rate_hz> <rpm> <first window> <windows> <model_dir>

Runs the Python preprocessing (the one the models were trained with) and Python
onnxruntime, and prints JSON: the model input, probabilities and, where the model has
them, the out-of-distribution distance and the outlier probability. The Rust pipeline
must give the same numbers.
"""

import json
import os
import sys

import numpy as np
import onnxruntime as ort
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main():
    kind = sys.argv[1]
    model_dir = sys.argv[-1]
    manifest = json.load(open(os.path.join(model_dir, "manifest.json")))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    s = ort.InferenceSession(os.path.join(model_dir, manifest["model_file"]), opts, providers=["CPUExecutionProvider"])
    if kind == "image":
        import surface_features as sf

        x = sf.preprocess(np.array(Image.open(sys.argv[2])))
    else:
        import bearing_features as bf

        fs, rpm, first, n = float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
        sig = np.fromfile(sys.argv[2], "<f4")
        x = np.stack([bf.features(sig[(first + i) * bf.WINDOW : (first + i + 1) * bf.WINDOW], fs, rpm) for i in range(n)])
    keys = [k for k in ("probabilities", "ood_distance", "outlier_probability") if k in manifest["outputs"]]
    outs = s.run([manifest["outputs"][k]["name"] for k in keys], {manifest["input"]["name"]: x})
    result = {"input": x.reshape(-1).tolist()}
    for k, o in zip(keys, outs):
        result[k] = o.reshape(-1).tolist()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
