//! Forecasting: the next `horizon` values of a series in ONE model call.
//!
//! The pipeline: parse and check the timestamps, take the last `window` points as slices (no
//! copy of the series), scale them by their own mean and standard deviation, compute the time
//! features of the window's and the horizon's timestamps once, run the model once for the whole
//! horizon, undo the scaling.

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use tract_onnx::prelude::*;

use crate::error::ModelError;
use crate::runtime::{OnnxModel, PlanMode, f32_output, f32_tensor};
use crate::timing::{Stopwatch, round_ms};

/// The committed forecasting model (`models/forecast/forecast.onnx`, made by
/// `models/forecast/train.py`).
pub const FORECAST_ONNX: &[u8] =
    include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/forecast/forecast.onnx"));

/// The committed forecasting model's name.
pub const FORECAST_MODEL: &str = "isl-forecast-mlp";

/// Time features per timestamp: sin/cos of the phase in the day, the week and the year.
pub const TIME_FEATURES: usize = 6;

const DAY: f64 = 86400.0;
const WEEK: f64 = 7.0 * DAY;
const YEAR: f64 = 31_556_952.0;
const WEEK_SHIFT: f64 = 3.0 * DAY;

/// A timestamp as sent: epoch seconds or an RFC 3339 date-time (or date) string.
#[derive(Debug, Clone, PartialEq)]
pub enum Timestamp {
    /// Seconds since 1970-01-01T00:00:00Z.
    Seconds(f64),
    /// RFC 3339, e.g. `2024-06-01T12:00:00Z` or `2024-06-01T14:00:00+02:00`.
    Text(String),
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Timestamp::Seconds(v) if v.fract() == 0.0 && v.abs() < 9.0e15 => s.serialize_i64(*v as i64),
            Timestamp::Seconds(v) => s.serialize_f64(*v),
            Timestamp::Text(t) => s.serialize_str(t),
        }
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Timestamp;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("epoch seconds or an RFC 3339 date-time string")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Timestamp, E> {
                Ok(Timestamp::Seconds(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Timestamp, E> {
                Ok(Timestamp::Seconds(v as f64))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Timestamp, E> {
                Ok(Timestamp::Seconds(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Timestamp, E> {
                Ok(Timestamp::Text(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

impl Timestamp {
    /// Epoch seconds, if the timestamp is valid.
    pub fn seconds(&self) -> Option<f64> {
        match self {
            Timestamp::Seconds(v) if v.is_finite() => Some(*v),
            Timestamp::Seconds(_) => None,
            Timestamp::Text(t) => parse_rfc3339(t),
        }
    }
}

/// Parses an RFC 3339 date-time (`YYYY-MM-DDTHH:MM:SS[.fff](Z|±HH:MM)`, `T` or a space) or a
/// date (`YYYY-MM-DD`, midnight UTC) to epoch seconds.
pub fn parse_rfc3339(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(r)?;
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    if b.len() == 10 {
        return Some(days as f64 * DAY);
    }
    if !matches!(b[10], b'T' | b't' | b' ') || b.len() < 20 || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut frac = 0.0;
    if b[i] == b'.' {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return None;
        }
        frac = std::str::from_utf8(&b[start - 1..i]).ok()?.parse::<f64>().ok()?;
    }
    let offset = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let (oh, om) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let o = oh * 3600 + om * 60;
            if *sign == b'+' { o } else { -o }
        }
        _ => return None,
    };
    Some(days as f64 * DAY + (h * 3600 + mi * 60 + sec - offset) as f64 + frac)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { yoe + era * 400 + 1 } else { yoe + era * 400 }, m, d)
}

/// Formats epoch seconds as RFC 3339 in UTC (`2024-06-01T12:00:00Z`; milliseconds when not whole).
pub fn format_rfc3339(t: f64) -> String {
    let ms_total = (t * 1000.0).round() as i64;
    let secs = ms_total.div_euclid(1000);
    let ms = ms_total.rem_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    let (h, mi, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    if ms == 0 {
        format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
    } else {
        format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}Z")
    }
}

/// Writes the six time features of `t` into `out`.
pub fn time_features_into(t: f64, out: &mut [f32]) {
    for (k, (period, shift)) in [(DAY, 0.0), (WEEK, WEEK_SHIFT), (YEAR, 0.0)].into_iter().enumerate() {
        let phase = (t + shift).rem_euclid(period) / period * 2.0 * std::f64::consts::PI;
        out[2 * k] = phase.sin() as f32;
        out[2 * k + 1] = phase.cos() as f32;
    }
}

/// Milliseconds spent in each stage of a forecast.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ForecastTimings {
    /// Checking values and parsing timestamps.
    pub parse: f64,
    /// Window scaling and time features.
    pub features: f64,
    /// The one model call.
    pub model: f64,
    /// Inverse scaling and output timestamps.
    pub inverse: f64,
    /// Everything.
    pub total: f64,
}

/// A forecast.
#[derive(Debug, Clone, PartialEq)]
pub struct Forecast {
    /// The future timestamps, epoch seconds.
    pub timestamps: Vec<f64>,
    /// The forecast values.
    pub values: Vec<f64>,
    /// The series' step in seconds (median spacing of the window).
    pub step: f64,
    /// Stage timings.
    pub timings: ForecastTimings,
}

/// A forecasting model: `values [batch, window]` and `time_features [batch, window + horizon, 6]`
/// in, the scaled `forecast [batch, horizon]` out.
#[derive(Debug)]
pub struct ForecastModel {
    name: String,
    onnx: OnnxModel,
    window: usize,
    horizon: usize,
}

impl ForecastModel {
    /// The committed model ([`FORECAST_ONNX`]).
    pub fn builtin() -> Result<Self, ModelError> {
        Self::from_bytes(FORECAST_MODEL, FORECAST_ONNX)
    }

    /// A model from ONNX bytes; window and horizon are read from its input shapes.
    pub fn from_bytes(name: &str, bytes: &[u8]) -> Result<Self, ModelError> {
        let onnx = OnnxModel::from_bytes(name, bytes, PlanMode::Symbolic)?;
        let proto = tract_onnx::onnx().proto_model_for_read(&mut &bytes[..]).map_err(|e| ModelError::load(name, e))?;
        let graph = proto.graph.as_ref().ok_or_else(|| ModelError::load(name, "no graph"))?;
        let dims = |input: &str| -> Vec<i64> {
            graph
                .input
                .iter()
                .find(|i| i.name == input)
                .and_then(|i| i.r#type.as_ref())
                .and_then(|t| match &t.value {
                    Some(tract_onnx::pb::type_proto::Value::TensorType(tt)) => tt.shape.as_ref(),
                    _ => None,
                })
                .map(|s| {
                    s.dim
                        .iter()
                        .map(|d| match &d.value {
                            Some(tract_onnx::pb::tensor_shape_proto::dimension::Value::DimValue(v)) => *v,
                            _ => -1,
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        let (v, tf) = (dims("values"), dims("time_features"));
        if v.len() != 2 || tf.len() != 3 || v[1] <= 0 || tf[2] != TIME_FEATURES as i64 || tf[1] <= v[1] {
            return Err(ModelError::load(name, format!("unexpected inputs: values {v:?}, time_features {tf:?}")));
        }
        let (window, horizon) = (v[1] as usize, (tf[1] - v[1]) as usize);
        if onnx.input_names() != ["values", "time_features"] {
            return Err(ModelError::load(name, format!("unexpected input order {:?}", onnx.input_names())));
        }
        Ok(ForecastModel { name: name.to_string(), onnx, window, horizon })
    }

    /// The model's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Points the model reads.
    pub fn window(&self) -> usize {
        self.window
    }

    /// The longest horizon (one model call).
    pub fn max_horizon(&self) -> usize {
        self.horizon
    }

    /// The underlying tract model.
    pub fn onnx(&self) -> &OnnxModel {
        &self.onnx
    }

    /// Forecasts the next `horizon` values of the series. `max_points` bounds the series length.
    pub fn forecast(
        &self,
        timestamps: &[Timestamp],
        values: &[f64],
        horizon: usize,
        max_points: usize,
    ) -> Result<Forecast, ModelError> {
        let total = Stopwatch::start();
        let mut sw = Stopwatch::start();
        if values.is_empty() {
            return Err(ModelError::EmptyInput { field: "values".into() });
        }
        if timestamps.len() != values.len() {
            return Err(ModelError::MismatchedLengths {
                first: "timestamps".into(),
                first_len: timestamps.len(),
                second: "values".into(),
                second_len: values.len(),
            });
        }
        if values.len() > max_points {
            return Err(ModelError::TooMany { field: "values".into(), count: values.len(), limit: max_points });
        }
        if let Some(index) = values.iter().position(|v| !v.is_finite()) {
            return Err(ModelError::NonFinite { field: "values".into(), index });
        }
        if horizon == 0 || horizon > self.horizon {
            return Err(ModelError::InvalidHorizon { horizon, max: self.horizon });
        }
        // Every timestamp is parsed and checked (order, repeats); only the window's are kept.
        let n = values.len();
        let start = n.saturating_sub(self.window);
        let mut window_ts = Vec::with_capacity(self.window);
        let mut prev = f64::NEG_INFINITY;
        for (index, ts) in timestamps.iter().enumerate() {
            let t = ts.seconds().ok_or_else(|| ModelError::InvalidTimestamp {
                index,
                value: match ts {
                    Timestamp::Seconds(v) => v.to_string(),
                    Timestamp::Text(s) => s.chars().take(64).collect(),
                },
            })?;
            if t == prev {
                return Err(ModelError::DuplicateTimestamps { index });
            }
            if t < prev {
                return Err(ModelError::UnsortedTimestamps { index });
            }
            prev = t;
            if index >= start {
                window_ts.push(t);
            }
        }
        if n < self.window {
            return Err(ModelError::SeriesTooShort { len: n, needed: self.window });
        }
        let window = &values[start..];
        let parse = sw.lap();

        // Scaling by the window's own statistics.
        let mean = window.iter().sum::<f64>() / window.len() as f64;
        let var = window.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / window.len() as f64;
        let mut std = var.sqrt();
        if std.is_nan() || std <= 1e-8 * mean.abs().max(1.0) {
            std = 1.0;
        }
        let scaled: Vec<f32> = window.iter().map(|v| ((v - mean) / std) as f32).collect();
        let step = median_step(&window_ts);
        let last = window_ts[window_ts.len() - 1];
        let mut feats = vec![0f32; (self.window + self.horizon) * TIME_FEATURES];
        for (k, out) in feats.chunks_exact_mut(TIME_FEATURES).enumerate() {
            let t = if k < self.window { window_ts[k] } else { last + step * (k - self.window + 1) as f64 };
            time_features_into(t, out);
        }
        let features = sw.lap();

        let inputs = tvec![
            f32_tensor(&self.name, &[1, self.window], &scaled)?,
            f32_tensor(&self.name, &[1, self.window + self.horizon, TIME_FEATURES], &feats)?,
        ];
        let outputs = self.onnx.run(inputs)?;
        let first = outputs.first().ok_or_else(|| ModelError::inference(&self.name, "no output"))?;
        let (raw, shape) = f32_output(&self.name, first)?;
        if shape != [1, self.horizon] {
            return Err(ModelError::inference(&self.name, format!("unexpected output shape {shape:?}")));
        }
        let model = sw.lap();

        let values: Vec<f64> = raw[..horizon].iter().map(|&y| y as f64 * std + mean).collect();
        let timestamps = (1..=horizon).map(|k| last + step * k as f64).collect();
        let inverse = sw.lap();
        Ok(Forecast {
            timestamps,
            values,
            step,
            timings: ForecastTimings {
                parse: round_ms(parse),
                features: round_ms(features),
                model: round_ms(model),
                inverse: round_ms(inverse),
                total: round_ms(total.ms()),
            },
        })
    }
}

/// Median spacing of increasing timestamps (the mean of the two middle ones for an even count).
fn median_step(ts: &[f64]) -> f64 {
    let mut diffs: Vec<f64> = ts.windows(2).map(|w| w[1] - w[0]).collect();
    if diffs.is_empty() {
        return 1.0;
    }
    diffs.sort_by(f64::total_cmp);
    let m = diffs.len() / 2;
    if diffs.len() % 2 == 1 { diffs[m] } else { (diffs[m - 1] + diffs[m]) / 2.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips_and_rejects_garbage() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(parse_rfc3339("2024-02-29T12:30:15Z"), Some(1_709_209_815.0));
        assert_eq!(parse_rfc3339("2024-02-29T14:30:15+02:00"), Some(1_709_209_815.0));
        assert_eq!(parse_rfc3339("2024-02-29 12:30:15.5z"), Some(1_709_209_815.5));
        assert_eq!(parse_rfc3339("2024-03-01"), Some(1_709_251_200.0));
        assert_eq!(format_rfc3339(1_709_209_815.0), "2024-02-29T12:30:15Z");
        assert_eq!(format_rfc3339(-1.0), "1969-12-31T23:59:59Z");
        for bad in [
            "",
            "2023-02-29T00:00:00Z",
            "2024-13-01T00:00:00Z",
            "2024-01-01T24:00:00Z",
            "2024-01-01T00:00:00",
            "2024-01-01T00:00:00+0200",
            "yesterday",
            "2024-01-01T00:00:00.Z",
            "２０２４-01-01",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }
}
