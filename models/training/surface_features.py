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


def sobel():
    sx = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], np.float32) / 8
    return sx[None, None], sx.T.copy()[None, None]


def outlier_feature_nodes(helper, numpy_helper, bank):
    """Extra ONNX nodes for the outlier detector, on top of feature_graph_nodes' tensors
    (image, mu, sd, z, z2, r_s*, q_s*): -> ofeats (N, K), already log-transformed where a
    feature is a positive energy. What they add to the 80 texture features:

    - raw intensity, before the per-image standardisation: mean, log std, soft shares
      of near-black and near-white pixels, an 8-bin soft histogram of the [0, 1] luma
      (shares and histogram on the 2x2-averaged image);
    - shape of the standardised intensities: skewness, log kurtosis, 8-bin soft histogram
      (of the 2x2-averaged standardised image);
    - spatial heterogeneity: per filter, the spread (std) and the peak (max - mean) of the
      log energy over a 4x4 grid of cells, at the second scale; spread of cell means and
      of log cell variances on 4x4 and 8x8 grids;
    - a coarser third scale (the image box-averaged 4x4) of the same filter bank;
    - heavy tails: log mean fourth power of every filter response (second and third scale);
    - gradients (Sobel on the 2x2-averaged standardised image): global orientation
      coherence of the structure tensor, mean and spread of the coherence over 7x7 cells
      of 8 px, log gradient energy and its fourth moment.
    """
    sx, sy = sobel()
    hist_raw = ((np.arange(8) + 0.5) / 8).astype(np.float32).reshape(1, 8, 1, 1)
    hist_z = (np.linspace(-2.625, 2.625, 8)).astype(np.float32).reshape(1, 8, 1, 1)
    inits = [
        numpy_helper.from_array(sx, "sobel_x"), numpy_helper.from_array(sy, "sobel_y"),
        numpy_helper.from_array(hist_raw, "hraw_c"), numpy_helper.from_array(np.array(8.0, np.float32), "hraw_s"),
        numpy_helper.from_array(hist_z, "hz_c"), numpy_helper.from_array(np.array(1 / 0.75, np.float32), "hz_s"),
        numpy_helper.from_array(np.array(1.0, np.float32), "one"),
        numpy_helper.from_array(np.array(0.04, np.float32), "lo_cut"),
        numpy_helper.from_array(np.array(0.96, np.float32), "hi_cut"),
        numpy_helper.from_array(np.array(25.0, np.float32), "cut_s"),
        numpy_helper.from_array(np.array(4.0, np.float32), "four"),
        numpy_helper.from_array(np.array(1e-6, np.float32), "oeps"),
        numpy_helper.from_array(np.array(0, np.int64), "i0"),
        numpy_helper.from_array(np.array(1, np.int64), "i1"),
        numpy_helper.from_array(np.array(2, np.int64), "i2"),
    ]
    N = helper.make_node
    nodes, pos, lin = [], [], []

    def spread(x, tag):
        """x (N,C,h,w) -> std over cells (N,C) and max - mean (N,C)."""
        nodes.extend([
            N("ReduceMean", [x], [f"{tag}_m"], axes=[2, 3], keepdims=1),
            N("Sub", [x, f"{tag}_m"], [f"{tag}_d"]),
            N("Mul", [f"{tag}_d", f"{tag}_d"], [f"{tag}_d2"]),
            N("ReduceMean", [f"{tag}_d2"], [f"{tag}_v"], axes=[2, 3], keepdims=0),
            N("Add", [f"{tag}_v", "oeps"], [f"{tag}_ve"]),
            N("Sqrt", [f"{tag}_ve"], [f"{tag}_sd"]),
            N("ReduceMax", [f"{tag}_d"], [f"{tag}_pk"], axes=[2, 3], keepdims=0),
        ])
        return f"{tag}_sd", f"{tag}_pk"

    def logged(x, tag):
        nodes.extend([N("Add", [x, "oeps"], [f"{tag}_e"]), N("Log", [f"{tag}_e"], [tag])])
        return tag

    # Raw intensity (near-black / near-white shares and histogram on the 64x64 average).
    nodes += [
        N("AveragePool", ["image"], ["img2"], kernel_shape=[2, 2], strides=[2, 2]),
        N("Flatten", ["mu"], ["mu_f"], axis=1), N("Flatten", ["sd"], ["sd_f"], axis=1),
        N("Sub", ["lo_cut", "img2"], ["lo_d"]), N("Relu", ["lo_d"], ["lo_r"]), N("Mul", ["lo_r", "cut_s"], ["lo_s"]),
        N("ReduceMean", ["lo_s"], ["dark"], axes=[1, 2, 3], keepdims=0),
        N("Sub", ["img2", "hi_cut"], ["hi_d"]), N("Relu", ["hi_d"], ["hi_r"]), N("Mul", ["hi_r", "cut_s"], ["hi_s"]),
        N("ReduceMean", ["hi_s"], ["bright"], axes=[1, 2, 3], keepdims=0),
        N("Unsqueeze", ["dark", "i1"], ["dark_f"]), N("Unsqueeze", ["bright", "i1"], ["bright_f"]),
    ]
    lin += ["mu_f", "dark_f", "bright_f"]
    pos += ["sd_f"]
    for tag, src, c, s in (("hr", "img2", "hraw_c", "hraw_s"), ("hz", "z2", "hz_c", "hz_s")):
        nodes += [
            N("Sub", [src, c], [f"{tag}_d"]), N("Abs", [f"{tag}_d"], [f"{tag}_a"]), N("Mul", [f"{tag}_a", s], [f"{tag}_as"]),
            N("Sub", ["one", f"{tag}_as"], [f"{tag}_t"]), N("Relu", [f"{tag}_t"], [f"{tag}_r"]),
            N("ReduceMean", [f"{tag}_r"], [f"{tag}_h"], axes=[2, 3], keepdims=0),
        ]
        lin.append(f"{tag}_h")
    # Shape of the standardised intensities (z has mean 0, variance ~1).
    nodes += [
        N("Mul", ["c2", "c"], ["c3"]), N("Mul", ["sd", "var_eps"], ["sd3"]), N("Div", ["c3", "sd3"], ["z3m"]),
        N("ReduceMean", ["z3m"], ["skew"], axes=[2, 3], keepdims=0),
        N("Mul", ["z", "z"], ["zz"]), N("Mul", ["zz", "zz"], ["z4"]),
        N("ReduceMean", ["z4"], ["kurt"], axes=[2, 3], keepdims=0),
    ]
    lin.append("skew")
    pos.append("kurt")
    # Heterogeneity of local mean and variance (4x4 and 8x8 cells).
    for k in (32, 16):
        nodes += [
            N("AveragePool", ["z"], [f"zm{k}"], kernel_shape=[k, k], strides=[k, k]),
            N("AveragePool", ["zz"], [f"zv{k}"], kernel_shape=[k, k], strides=[k, k]),
            N("Mul", [f"zm{k}", f"zm{k}"], [f"zm2_{k}"]), N("Sub", [f"zv{k}", f"zm2_{k}"], [f"zvc{k}"]),
            N("Relu", [f"zvc{k}"], [f"zvr{k}"]),
        ]
        lin += list(spread(f"zm{k}", f"spm{k}"))[:1]
        lin += list(spread(logged(f"zvr{k}", f"lzv{k}"), f"spv{k}"))
    # Third scale.
    nodes += [
        N("AveragePool", ["z2"], ["z_s3"], kernel_shape=[2, 2], strides=[2, 2]),
        N("Conv", ["z_s3", "bank"], ["r_s3"]),
        N("Abs", ["r_s3"], ["a_s3"]), N("ReduceMean", ["a_s3"], ["ma_s3"], axes=[2, 3], keepdims=0),
        N("Mul", ["r_s3", "r_s3"], ["q_s3"]), N("ReduceMean", ["q_s3"], ["mq_s3"], axes=[2, 3], keepdims=0),
    ]
    pos += ["ma_s3", "mq_s3"]
    # Spatial heterogeneity of filter energy over 4x4 cells of 13 px, second scale (the
    # first scale costs too much time; the third, with 5x5-px cells, only added noise).
    for tag, k in (("s2", 13),):
        nodes.append(N("AveragePool", [f"q_{tag}"], [f"ce_{tag}"], kernel_shape=[k, k], strides=[k, k]))
        lin += list(spread(logged(f"ce_{tag}", f"lce_{tag}"), f"sp_{tag}"))
    # Heavy tails of the filter responses.
    for tag in ("s2", "s3"):
        nodes += [N("Mul", [f"q_{tag}", f"q_{tag}"], [f"q4_{tag}"]),
                  N("ReduceMean", [f"q4_{tag}"], [f"m4_{tag}"], axes=[2, 3], keepdims=0)]
        pos.append(f"m4_{tag}")
    # Gradients and structure tensor, on the 64x64 average.
    nodes += [
        N("Conv", ["z2", "sobel_x"], ["gx"]), N("Conv", ["z2", "sobel_y"], ["gy"]),
        N("Mul", ["gx", "gx"], ["jxx"]), N("Mul", ["gy", "gy"], ["jyy"]), N("Mul", ["gx", "gy"], ["jxy"]),
        N("Concat", ["jxx", "jyy", "jxy"], ["J"], axis=1),  # (N,3,62,62)
        N("Add", ["jxx", "jyy"], ["g2"]), N("Mul", ["g2", "g2"], ["g4"]),
        N("ReduceMean", ["g2"], ["mg2"], axes=[1, 2, 3], keepdims=0),
        N("ReduceMean", ["g4"], ["mg4"], axes=[1, 2, 3], keepdims=0),
        N("Unsqueeze", ["mg2", "i1"], ["mg2_f"]), N("Unsqueeze", ["mg4", "i1"], ["mg4_f"]),
        N("ReduceMean", ["J"], ["Jg"], axes=[2, 3], keepdims=1),  # (N,3,1,1)
        N("AveragePool", ["J"], ["Jl"], kernel_shape=[8, 8], strides=[8, 8]),  # (N,3,7,7)
    ]
    pos += ["mg2_f", "mg4_f"]
    for tag in ("Jg", "Jl"):
        nodes += [
            N("Gather", [tag, "i0"], [f"{tag}_xx"], axis=1), N("Gather", [tag, "i1"], [f"{tag}_yy"], axis=1),
            N("Gather", [tag, "i2"], [f"{tag}_xy"], axis=1),
            N("Sub", [f"{tag}_xx", f"{tag}_yy"], [f"{tag}_dd"]), N("Mul", [f"{tag}_dd", f"{tag}_dd"], [f"{tag}_dd2"]),
            N("Mul", [f"{tag}_xy", f"{tag}_xy"], [f"{tag}_xy2"]), N("Mul", [f"{tag}_xy2", "four"], [f"{tag}_xy4"]),
            N("Add", [f"{tag}_dd2", f"{tag}_xy4"], [f"{tag}_n2"]), N("Add", [f"{tag}_n2", "oeps"], [f"{tag}_n2e"]),
            N("Sqrt", [f"{tag}_n2e"], [f"{tag}_n"]),
            N("Add", [f"{tag}_xx", f"{tag}_yy"], [f"{tag}_tr"]), N("Add", [f"{tag}_tr", "oeps"], [f"{tag}_tre"]),
            N("Div", [f"{tag}_n", f"{tag}_tre"], [f"{tag}_coh"]),  # (N,h,w)
        ]
    nodes += [N("Flatten", ["Jg_coh"], ["coh_g"], axis=1),
              N("Unsqueeze", ["Jl_coh", "i1"], ["Jl_coh4"])]
    lin.append("coh_g")
    nodes.append(N("ReduceMean", ["Jl_coh4"], ["coh_lm"], axes=[2, 3], keepdims=0))
    lin += ["coh_lm", spread("Jl_coh4", "spcoh")[0]]
    nodes += [N("Concat", pos, ["opos"], axis=1)]
    logged("opos", "lopos")
    nodes.append(N("Concat", ["lopos"] + lin, ["ofeats"], axis=1))
    return nodes, inits
