"""Bearing-fault features from one vibration window: the reference implementation.

The server computes the same features in Rust (server/src/diagnosis/telemetry.rs); the
parity test checks that both agree. Every feature is speed-normalised: defect
frequencies are orders of the shaft speed, so a model trained at some loads and fault
sizes sees the same pattern at others.

Envelope analysis (Randall & Antoni, "Rolling element bearing diagnostics - a tutorial",
MSSP 25 (2011) 485-520): band-pass around the structural resonances that the impacts
excite, take the magnitude of the analytic signal (the Hilbert envelope), and look at
the envelope's spectrum: it peaks at the defect frequency and its harmonics.

Features (46): for each demodulation band (3) x characteristic order (5) x harmonic (3),
the peak of the envelope spectrum within +-2 % of the expected frequency, in dB over
the median envelope-spectrum level between 0.5 and 12 shaft orders; then the natural
log of the kurtosis of the raw window.
"""

import numpy as np

# 6205-2RS JEM SKF drive-end bearing orders (multiples of shaft frequency), from the
# dataset README: BPFI, BPFO, 2 x BSF (a ball defect strikes both races), FTF, shaft.
ORDERS = (("bpfi", 5.4152), ("bpfo", 3.5848), ("bsf2", 4.7135), ("ftf", 0.39828), ("shaft", 1.0))
HARMONICS = (1, 2, 3)
# Demodulation bands in Hz; the sample rate must be above twice the top edge.
BANDS = ((500.0, 2000.0), (2000.0, 4000.0), (3500.0, 5500.0))
WINDOW = 8192
TOLERANCE = 0.02  # relative search width around a defect frequency (slip, speed error)
NOISE_ORDERS = (0.5, 12.0)  # where the envelope-spectrum noise floor is measured

FEATURE_NAMES = [
    f"b{b}_{name}_h{h}_db" for b in range(len(BANDS)) for name, _ in ORDERS for h in HARMONICS
] + ["log_kurtosis"]


def envelope_spectrum(x: np.ndarray, fs: float, band) -> np.ndarray:
    """|FFT| / n of the Hilbert envelope of x limited to `band` (Hz), bins 0..n/2."""
    n = len(x)
    spec = np.fft.fft(x - x.mean())
    freqs = np.arange(n) * (fs / n)
    # Analytic signal restricted to the band: keep the positive in-band bins, doubled.
    mask = (freqs >= band[0]) & (freqs <= band[1])
    analytic = np.fft.ifft(np.where(mask, 2.0 * spec, 0.0))
    env = np.abs(analytic)
    env = env - env.mean()
    return np.abs(np.fft.fft(env))[: n // 2 + 1] / n


def features(x, fs: float, rpm: float) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    fr = rpm / 60.0
    df = fs / n
    lo_noise = max(int(NOISE_ORDERS[0] * fr / df), 1)
    hi_noise = int(NOISE_ORDERS[1] * fr / df)
    out = []
    for band in BANDS:
        es = envelope_spectrum(x, fs, band)
        noise = float(np.median(es[lo_noise : hi_noise + 1])) + 1e-12
        for _, order in ORDERS:
            for h in HARMONICS:
                f = h * order * fr
                lo = max(int(np.floor(f * (1 - TOLERANCE) / df)), 1)
                hi = min(int(np.ceil(f * (1 + TOLERANCE) / df)), len(es) - 1)
                peak = float(es[lo : hi + 1].max()) if hi >= lo else 0.0
                out.append(20.0 * np.log10(peak / noise + 1e-12))
    xc = x - x.mean()
    m2 = float(np.mean(xc**2)) + 1e-24
    out.append(float(np.log(np.mean(xc**4) / m2**2 + 1e-12)))
    return np.asarray(out, dtype=np.float32)
