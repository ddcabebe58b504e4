//! Vibration telemetry: parsing, time-domain statistics, envelope spectrum and the
//! bearing model's envelope-order features.
//!
//! The features mirror `models/training/bearing_features.py` operation for operation
//! (the parity test holds them to the same model outputs). Envelope analysis follows
//! Randall & Antoni, "Rolling element bearing diagnostics - a tutorial", MSSP 25 (2011):
//! band-limit, take the Hilbert envelope, and look for peaks at the defect frequencies,
//! which are fixed multiples (orders) of the shaft speed.

use std::sync::Arc;

use rustfft::num_complex::Complex64;
use rustfft::{Fft, FftPlanner};
use serde::{Deserialize, Serialize};

use super::manifest::EnvelopeFeatures;

/// Limits on what a client may send.
pub const MAX_SAMPLES: usize = 4_000_000;
pub const SAMPLE_RATE_RANGE: (f64, f64) = (1_000.0, 200_000.0);
pub const RPM_RANGE: (f64, f64) = (60.0, 60_000.0);
/// At most this many windows are classified per upload (evenly spread over the signal).
pub const MAX_WINDOWS: usize = 64;
/// Magic of the raw float32 format: "FXV1", u32 sample rate, f32 rpm, u32 count (LE).
pub const RAW_MAGIC: &[u8; 4] = b"FXV1";

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SignalError {
    #[error("{0}")]
    Format(String),
    #[error("sample {index} is not a finite number")]
    NotFinite { index: usize },
    #[error("sample_rate_hz {0} is outside {min}..={max}", min = SAMPLE_RATE_RANGE.0, max = SAMPLE_RATE_RANGE.1)]
    SampleRate(f64),
    #[error("rpm {0} is outside {min}..={max}", min = RPM_RANGE.0, max = RPM_RANGE.1)]
    Rpm(f64),
    #[error("the signal has {got} samples; at least {need} are needed")]
    TooShort { got: usize, need: usize },
    #[error("the signal has more than {MAX_SAMPLES} samples")]
    TooLong,
    #[error("sample_rate_hz {got} is too low for the model's demodulation bands; it needs at least {need}")]
    RateTooLowForModel { got: f64, need: f64 },
}

/// A parsed vibration recording.
#[derive(Clone, Debug, PartialEq)]
pub struct Signal {
    pub samples: Vec<f64>,
    pub sample_rate_hz: f64,
    pub rpm: f64,
}

/// JSON upload: `{"sample_rate_hz": 12000, "rpm": 1797, "vibration": [...]}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonSignal {
    sample_rate_hz: f64,
    rpm: f64,
    vibration: Vec<f64>,
    #[serde(default)]
    temperature_c: Option<f64>,
    #[serde(default)]
    current_a: Option<f64>,
}

impl Signal {
    fn checked(samples: Vec<f64>, sample_rate_hz: f64, rpm: f64) -> Result<Signal, SignalError> {
        if !(SAMPLE_RATE_RANGE.0..=SAMPLE_RATE_RANGE.1).contains(&sample_rate_hz) {
            return Err(SignalError::SampleRate(sample_rate_hz));
        }
        if !(RPM_RANGE.0..=RPM_RANGE.1).contains(&rpm) {
            return Err(SignalError::Rpm(rpm));
        }
        if samples.len() > MAX_SAMPLES {
            return Err(SignalError::TooLong);
        }
        if let Some(index) = samples.iter().position(|v| !v.is_finite()) {
            return Err(SignalError::NotFinite { index });
        }
        Ok(Signal { samples, sample_rate_hz, rpm })
    }

    /// Parses a body by content type. CSV and raw bodies take the rate and speed from
    /// the query (`sample_rate_hz`, `rpm`); JSON carries them itself.
    pub fn parse(content_type: &str, body: &[u8], rate: Option<f64>, rpm: Option<f64>) -> Result<Signal, SignalError> {
        let need = |v: Option<f64>, name: &str| v.ok_or_else(|| SignalError::Format(format!("{name} is required (query parameter)")));
        match content_type {
            "application/json" => {
                let j: JsonSignal = serde_json::from_slice(body).map_err(|e| SignalError::Format(format!("JSON: {e}")))?;
                let _ = (j.temperature_c, j.current_a);
                Signal::checked(j.vibration, j.sample_rate_hz, j.rpm)
            }
            "text/csv" => Signal::checked(parse_csv(body)?, need(rate, "sample_rate_hz")?, need(rpm, "rpm")?),
            "application/octet-stream" => {
                if body.len() < 16 || &body[..4] != RAW_MAGIC {
                    return Err(SignalError::Format("raw telemetry must start with the FXV1 header".into()));
                }
                let rate = f64::from(u32::from_le_bytes(body[4..8].try_into().expect("4 bytes")));
                let rpm = f64::from(f32::from_le_bytes(body[8..12].try_into().expect("4 bytes")));
                let n = u32::from_le_bytes(body[12..16].try_into().expect("4 bytes")) as usize;
                if n > MAX_SAMPLES {
                    return Err(SignalError::TooLong);
                }
                let data = &body[16..];
                if data.len() != n * 4 {
                    return Err(SignalError::Format(format!("the header says {n} samples but {} bytes follow", data.len())));
                }
                let samples = data.chunks_exact(4).map(|b| f64::from(f32::from_le_bytes(b.try_into().expect("4 bytes")))).collect();
                Signal::checked(samples, rate, rpm)
            }
            other => Err(SignalError::Format(format!("telemetry content type `{other}` is not understood"))),
        }
    }
}

/// CSV: a header row, then numbers. The vibration column is the one named
/// `vibration`, `accel`, `accel_g` or `acceleration`, else the only column.
fn parse_csv(body: &[u8]) -> Result<Vec<f64>, SignalError> {
    let text = std::str::from_utf8(body).map_err(|_| SignalError::Format("CSV must be UTF-8".into()))?;
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<String> = lines.next().ok_or_else(|| SignalError::Format("CSV is empty".into()))?.split(',').map(|h| h.trim().to_ascii_lowercase()).collect();
    let col = header
        .iter()
        .position(|h| ["vibration", "accel", "accel_g", "acceleration"].contains(&h.as_str()))
        .or((header.len() == 1).then_some(0))
        .ok_or_else(|| SignalError::Format("CSV needs a `vibration` (or accel, accel_g, acceleration) column".into()))?;
    let mut out = Vec::new();
    for (i, line) in lines.enumerate() {
        if out.len() >= MAX_SAMPLES {
            return Err(SignalError::TooLong);
        }
        let cell = line.split(',').nth(col).ok_or_else(|| SignalError::Format(format!("CSV row {} has no column {}", i + 2, col + 1)))?;
        let v: f64 = cell.trim().parse().map_err(|_| SignalError::Format(format!("CSV row {}: `{}` is not a number", i + 2, cell.trim())))?;
        out.push(v);
    }
    Ok(out)
}

/// Time-domain statistics of the whole signal.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Stats {
    pub samples: usize,
    pub duration_s: f64,
    pub rms: f64,
    pub kurtosis: f64,
    pub crest_factor: f64,
}

pub fn stats(s: &Signal) -> Stats {
    let n = s.samples.len().max(1) as f64;
    let mean = s.samples.iter().sum::<f64>() / n;
    let (mut m2, mut m4, mut peak) = (0.0, 0.0, 0.0f64);
    for v in &s.samples {
        let d = v - mean;
        m2 += d * d;
        m4 += d * d * d * d;
        peak = peak.max(d.abs());
    }
    let (m2, m4) = (m2 / n, m4 / n);
    let rms = m2.sqrt();
    Stats {
        samples: s.samples.len(),
        duration_s: s.samples.len() as f64 / s.sample_rate_hz,
        rms,
        kurtosis: if m2 > 0.0 { m4 / (m2 * m2) } else { 0.0 },
        crest_factor: if rms > 0.0 { peak / rms } else { 0.0 },
    }
}

/// FFT plans for one window length, reused across windows and bands.
pub struct Plans {
    n: usize,
    fwd: Arc<dyn Fft<f64>>,
    inv: Arc<dyn Fft<f64>>,
}

impl Plans {
    pub fn new(n: usize) -> Plans {
        let mut p = FftPlanner::new();
        Plans { n, fwd: p.plan_fft_forward(n), inv: p.plan_fft_inverse(n) }
    }
}

/// |FFT|/n of the Hilbert envelope of `x` limited to `band` Hz, bins 0..=n/2.
pub fn envelope_spectrum(plans: &Plans, x: &[f64], fs: f64, band: [f64; 2]) -> Vec<f64> {
    let n = plans.n;
    let mean = x.iter().sum::<f64>() / n as f64;
    let mut buf: Vec<Complex64> = x.iter().map(|v| Complex64::new(v - mean, 0.0)).collect();
    plans.fwd.process(&mut buf);
    let df = fs / n as f64;
    for (k, c) in buf.iter_mut().enumerate() {
        let f = k as f64 * df;
        *c = if f >= band[0] && f <= band[1] { *c * 2.0 } else { Complex64::new(0.0, 0.0) };
    }
    plans.inv.process(&mut buf);
    // rustfft does not normalise the inverse; numpy's ifft divides by n.
    let env: Vec<f64> = buf.iter().map(|c| c.norm() / n as f64).collect();
    let emean = env.iter().sum::<f64>() / n as f64;
    let mut spec: Vec<Complex64> = env.iter().map(|v| Complex64::new(v - emean, 0.0)).collect();
    plans.fwd.process(&mut spec);
    spec[..n / 2 + 1].iter().map(|c| c.norm() / n as f64).collect()
}

/// numpy's median: the mean of the two middle values for an even count.
fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let m = s.len() / 2;
    if s.len() % 2 == 1 {
        s[m]
    } else {
        (s[m - 1] + s[m]) / 2.0
    }
}

fn noise_range(p: &EnvelopeFeatures, n: usize, fs: f64, fr: f64) -> (usize, usize) {
    let df = fs / n as f64;
    let lo = ((p.noise_orders[0] * fr / df) as usize).max(1);
    let hi = ((p.noise_orders[1] * fr / df) as usize).min(n / 2);
    (lo, hi.max(lo))
}

/// The model's feature vector for one window (length `p.feature_count()`).
pub fn window_features(plans: &Plans, p: &EnvelopeFeatures, x: &[f64], fs: f64, rpm: f64) -> Vec<f32> {
    let n = x.len();
    let fr = rpm / 60.0;
    let df = fs / n as f64;
    let (lo_n, hi_n) = noise_range(p, n, fs, fr);
    let mut out = Vec::with_capacity(p.feature_count());
    for band in &p.bands_hz {
        let es = envelope_spectrum(plans, x, fs, *band);
        let noise = median(&es[lo_n..=hi_n]) + 1e-12;
        for name in EnvelopeFeatures::ORDER_NAMES {
            let order = p.orders[name];
            for h in &p.harmonics {
                let f = f64::from(*h) * order * fr;
                let lo = ((f * (1.0 - p.tolerance) / df).floor() as usize).max(1);
                let hi = ((f * (1.0 + p.tolerance) / df).ceil() as usize).min(es.len() - 1);
                let peak = if hi >= lo { es[lo..=hi].iter().cloned().fold(0.0, f64::max) } else { 0.0 };
                out.push((20.0 * (peak / noise + 1e-12).log10()) as f32);
            }
        }
    }
    let mean = x.iter().sum::<f64>() / n as f64;
    let m2 = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64 + 1e-24;
    let m4 = x.iter().map(|v| (v - mean).powi(4)).sum::<f64>() / n as f64;
    out.push((m4 / (m2 * m2) + 1e-12).ln() as f32);
    out
}

/// Start offsets of the windows to classify: consecutive, at most `MAX_WINDOWS`,
/// evenly spread when the signal is longer.
pub fn window_starts(len: usize, window: usize) -> Vec<usize> {
    let n = len / window;
    if n <= MAX_WINDOWS {
        (0..n).map(|i| i * window).collect()
    } else {
        (0..MAX_WINDOWS).map(|i| i * (n - 1) / (MAX_WINDOWS - 1) * window).collect()
    }
}

/// A defect frequency marked on the envelope spectrum.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Marker {
    pub name: String,
    pub harmonic: u32,
    pub hz: f64,
}

/// The envelope spectrum to plot: one band of the first window, up to a little beyond
/// the highest marked frequency, with the defect frequencies marked.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct EnvelopePlot {
    pub band_hz: [f64; 2],
    pub hz_per_bin: f64,
    pub amplitude: Vec<f64>,
    pub markers: Vec<Marker>,
}

pub fn envelope_plot(plans: &Plans, p: &EnvelopeFeatures, s: &Signal, band: [f64; 2]) -> EnvelopePlot {
    let n = p.window_samples;
    let es = envelope_spectrum(plans, &s.samples[..n], s.sample_rate_hz, band);
    let fr = s.rpm / 60.0;
    let mut markers = Vec::new();
    for name in EnvelopeFeatures::ORDER_NAMES {
        for h in &p.harmonics {
            markers.push(Marker { name: name.to_owned(), harmonic: *h, hz: f64::from(*h) * p.orders[name] * fr });
        }
    }
    let df = s.sample_rate_hz / n as f64;
    let top = markers.iter().map(|m| m.hz).fold(0.0, f64::max) * 1.2;
    let bins = ((top / df).ceil() as usize + 1).min(es.len());
    EnvelopePlot { band_hz: band, hz_per_bin: df, amplitude: es[..bins].to_vec(), markers }
}

/// Checks that the model can use this signal.
pub fn check_for_model(s: &Signal, p: &EnvelopeFeatures) -> Result<(), SignalError> {
    if s.sample_rate_hz < p.min_sample_rate_hz {
        return Err(SignalError::RateTooLowForModel { got: s.sample_rate_hz, need: p.min_sample_rate_hz });
    }
    if s.samples.len() < p.window_samples {
        return Err(SignalError::TooShort { got: s.samples.len(), need: p.window_samples });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_amplitude_modulated_tone_has_its_envelope_peak_at_the_modulation_frequency() {
        let (fs, n) = (12_000.0, 8192);
        let x: Vec<f64> = (0..n)
            .map(|i| {
                let t = i as f64 / fs;
                (1.0 + 0.8 * (2.0 * std::f64::consts::PI * 160.0 * t).cos()) * (2.0 * std::f64::consts::PI * 3_000.0 * t).sin()
            })
            .collect();
        let plans = Plans::new(n);
        let es = envelope_spectrum(&plans, &x, fs, [2_000.0, 4_000.0]);
        let df = fs / n as f64;
        let peak = es.iter().enumerate().skip(2).max_by(|a, b| a.1.total_cmp(b.1)).unwrap().0;
        assert!(((peak as f64) * df - 160.0).abs() < 2.0 * df, "peak at {} Hz", peak as f64 * df);
    }

    #[test]
    fn bad_signals_are_refused_with_a_reason() {
        let ok = vec![0.0; 10];
        assert_eq!(Signal::checked(ok.clone(), 10.0, 1000.0), Err(SignalError::SampleRate(10.0)));
        assert_eq!(Signal::checked(ok.clone(), 12_000.0, 1.0), Err(SignalError::Rpm(1.0)));
        assert_eq!(Signal::checked(vec![0.0, f64::NAN], 12_000.0, 1800.0), Err(SignalError::NotFinite { index: 1 }));
        assert!(Signal::parse("text/csv", b"vibration\n1\nx\n", Some(12_000.0), Some(1800.0)).is_err());
        assert!(Signal::parse("text/csv", b"t,vibration\n0,1\n1,2\n", Some(12_000.0), None).is_err());
        let s = Signal::parse("text/csv", b"t,vibration\n0,1\n1,2\n", Some(12_000.0), Some(1800.0)).unwrap();
        assert_eq!(s.samples, vec![1.0, 2.0]);
        let mut raw = RAW_MAGIC.to_vec();
        raw.extend(12_000u32.to_le_bytes());
        raw.extend(1797f32.to_le_bytes());
        raw.extend(3u32.to_le_bytes());
        raw.extend([1f32, 2.0].iter().flat_map(|v| v.to_le_bytes()));
        assert!(matches!(Signal::parse("application/octet-stream", &raw, None, None), Err(SignalError::Format(_))));
        raw.extend(3f32.to_le_bytes());
        assert_eq!(Signal::parse("application/octet-stream", &raw, None, None).unwrap().samples, vec![1.0, 2.0, 3.0]);
    }

    #[test]
    fn window_selection_is_bounded() {
        assert_eq!(window_starts(100, 10).len(), 10);
        let w = window_starts(10_000 * 8192, 8192);
        assert_eq!(w.len(), MAX_WINDOWS);
        assert!(w.last().unwrap() + 8192 <= 10_000 * 8192);
    }
}
