"""Surface-defect image preprocessing and the fixed texture-feature graph.

Preprocessing (mirrored in Rust, server/src/diagnosis/image.rs, and checked by the parity
test): 8-bit luma (Rec. 601 weights on sRGB values, as JPEG does), centre crop to a
square, box-filter (area-average) resampling to SIZE x SIZE, scaled to [0, 1].

The ONNX graph then standardises each image (zero mean, unit variance: exposure and
contrast do not matter), filters it with a fixed bank of Gabor and Laplacian-of-Gaussian
kernels at two scales, and pools each response into its mean absolute value and its
root-mean-square. A linear classifier trained on those features follows, and a
Mahalanobis distance to the nearest class tells known textures from anything else.
"""

import numpy as np

SIZE = 128
LUMA = (0.299, 0.587, 0.114)


def box_weights(n_in: int, n_out: int) -> np.ndarray:
    """Row i holds the area-average weights of output pixel i over the input pixels."""
    w = np.zeros((n_out, n_in), dtype=np.float64)
    scale = n_in / n_out
    for i in range(n_out):
        a, b = i * scale, (i + 1) * scale
        j0, j1 = int(np.floor(a)), min(int(np.ceil(b)), n_in)
        for j in range(j0, j1):
            w[i, j] = min(b, j + 1) - max(a, j)
        w[i] /= w[i].sum()
    return w


def preprocess(rgb_or_gray: np.ndarray) -> np.ndarray:
    """uint8 HxW or HxWx3 -> float32 1x1xSIZExSIZE in [0, 1]."""
    img = np.asarray(rgb_or_gray)
    if img.ndim == 3:
        img = img[..., :3].astype(np.float64)
        luma = LUMA[0] * img[..., 0] + LUMA[1] * img[..., 1] + LUMA[2] * img[..., 2]
        gray = np.floor(luma + 0.5).clip(0, 255)
    else:
        gray = img.astype(np.float64)
    h, w = gray.shape
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    sq = gray[top : top + s, left : left + s] / 255.0
    wy = box_weights(s, SIZE)
    out = wy @ sq @ wy.T
    return out.astype(np.float32)[None, None]


def gabor(size, sigma, theta, lambd, gamma=0.5):
    half = size // 2
    y, x = np.mgrid[-half : half + 1, -half : half + 1].astype(np.float64)
    xr = x * np.cos(theta) + y * np.sin(theta)
    yr = -x * np.sin(theta) + y * np.cos(theta)
    g = np.exp(-(xr**2 + (gamma * yr) ** 2) / (2 * sigma**2)) * np.cos(2 * np.pi * xr / lambd)
    g -= g.mean()
    return g / np.abs(g).sum()


def log_kernel(size, sigma):
    half = size // 2
    y, x = np.mgrid[-half : half + 1, -half : half + 1].astype(np.float64)
    r2 = (x**2 + y**2) / (2 * sigma**2)
    k = (r2 - 1) * np.exp(-r2)
    k -= k.mean()
    return k / np.abs(k).sum()


def filter_bank(size=11):
    ks = []
    for lambd, sigma in ((3.0, 1.5), (5.0, 2.5), (8.0, 3.5)):
        for t in range(6):
            ks.append(gabor(size, sigma, np.pi * t / 6, lambd))
    for sigma in (1.0, 2.0):
        ks.append(log_kernel(size, sigma))
    return np.stack(ks)[:, None].astype(np.float32)  # (F, 1, k, k)


def feature_graph_nodes(helper, TensorProto, numpy_helper, bank):
    """ONNX nodes: image (N,1,S,S) -> feats (N, 4F)."""
    nodes, inits = [], [numpy_helper.from_array(bank, "bank")]
    nodes += [
        helper.make_node("ReduceMean", ["image"], ["mu"], axes=[2, 3], keepdims=1),
        helper.make_node("Sub", ["image", "mu"], ["c"]),
        helper.make_node("Mul", ["c", "c"], ["c2"]),
        helper.make_node("ReduceMean", ["c2"], ["var"], axes=[2, 3], keepdims=1),
        helper.make_node("Add", ["var", "eps"], ["var_eps"]),
        helper.make_node("Sqrt", ["var_eps"], ["sd"]),
        helper.make_node("Div", ["c", "sd"], ["z"]),
        helper.make_node("AveragePool", ["z"], ["z2"], kernel_shape=[2, 2], strides=[2, 2]),
    ]
    inits.append(numpy_helper.from_array(np.array(1e-6, dtype=np.float32), "eps"))
    pooled = []
    for tag, src in (("s1", "z"), ("s2", "z2")):
        nodes += [
            helper.make_node("Conv", [src, "bank"], [f"r_{tag}"]),
            helper.make_node("Abs", [f"r_{tag}"], [f"a_{tag}"]),
            helper.make_node("ReduceMean", [f"a_{tag}"], [f"ma_{tag}"], axes=[2, 3], keepdims=0),
            helper.make_node("Mul", [f"r_{tag}", f"r_{tag}"], [f"q_{tag}"]),
            helper.make_node("ReduceMean", [f"q_{tag}"], [f"mq_{tag}"], axes=[2, 3], keepdims=0),
            helper.make_node("Sqrt", [f"mq_{tag}"], [f"rms_{tag}"]),
        ]
        pooled += [f"ma_{tag}", f"rms_{tag}"]
    nodes.append(helper.make_node("Concat", pooled, ["feats"], axis=1))
    return nodes, inits
