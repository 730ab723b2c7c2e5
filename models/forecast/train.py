#!/usr/bin/env python3
"""Trains isl's small forecasting model and exports it to ONNX (models/forecast/forecast.onnx).

The model: an MLP over a window of the last WINDOW values (scaled by the window's own mean and
standard deviation) and six time features of the window's and the horizon's timestamps, that
predicts all HORIZON future values at once (one model call for any horizon up to HORIZON).

The data: series generated here (no download): hourly, with daily and weekly cycles of random
shape and phase, a yearly swing, trend, level shifts and AR(1) noise, at random scales. Fixed
seeds: running it again gives the same file.

Also writes models/forecast/reference.json: requests, the model's inputs and the outputs of
onnxruntime and of this file's pipeline (features, scaling, inverse scaling), which the Rust
tests compare against tract.

Needs numpy, onnx and onnxruntime (the .models-venv made by scripts/fetch-models.sh has them):
    .models-venv/bin/python models/forecast/train.py
"""

import json
import math
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

HERE = Path(__file__).resolve().parent
WINDOW = 48
HORIZON = 48
FEATURES = 6
HIDDEN = 128
DAY = 86400.0
WEEK = 7 * DAY
YEAR = 31556952.0  # mean Gregorian year in seconds
# 1970-01-01 was a Thursday: shift so that weekday 0 is Monday 00:00 UTC.
WEEK_SHIFT = 3 * DAY


def time_features(ts):
    """[len, 6]: sin/cos of the phase in the day, in the week (Monday 00:00 UTC = 0), in the year."""
    ts = np.asarray(ts, dtype=np.float64)
    out = np.empty((len(ts), FEATURES), dtype=np.float64)
    for k, (period, shift) in enumerate(((DAY, 0.0), (WEEK, WEEK_SHIFT), (YEAR, 0.0))):
        phase = np.mod(ts + shift, period) / period * 2.0 * math.pi
        out[:, 2 * k] = np.sin(phase)
        out[:, 2 * k + 1] = np.cos(phase)
    return out


def scale(window):
    mean = float(np.mean(window))
    std = float(np.std(window))
    if not std > 1e-8 * max(1.0, abs(mean)):
        std = 1.0
    return mean, std


def step_of(ts_window):
    """The series' step: the median spacing of the window's timestamps."""
    return float(np.median(np.diff(np.asarray(ts_window, dtype=np.float64))))


def model_inputs(timestamps, values):
    """The model's inputs for one request (the last WINDOW points), and what undoes the scaling."""
    ts = np.asarray(timestamps, dtype=np.float64)[-WINDOW:]
    v = np.asarray(values, dtype=np.float64)[-WINDOW:]
    mean, std = scale(v)
    step = step_of(ts)
    future = ts[-1] + step * np.arange(1, HORIZON + 1, dtype=np.float64)
    feats = time_features(np.concatenate([ts, future]))
    return ((v - mean) / std).astype(np.float32), feats.astype(np.float32), mean, std, future


def generate_series(rng, length):
    start = float(rng.integers(1_400_000_000 // 3600, 1_800_000_000 // 3600)) * 3600.0
    ts = start + 3600.0 * np.arange(length)
    f = time_features(ts)
    day_phase = np.mod(ts, DAY) / DAY * 2 * math.pi
    week_day = np.floor(np.mod(ts + WEEK_SHIFT, WEEK) / DAY)
    daily = sum(rng.normal(0, 1.0 / (h + 1)) * np.sin(h * day_phase + rng.uniform(0, 2 * math.pi)) for h in range(1, 4))
    weekend = np.where(week_day >= 5, rng.normal(0, 0.8), 0.0)
    yearly = rng.normal(0, 0.5) * f[:, 4] + rng.normal(0, 0.5) * f[:, 5]
    trend = rng.normal(0, 0.002) * np.arange(length)
    shifts = np.cumsum(np.where(rng.random(length) < 0.002, rng.normal(0, 1.0, length), 0.0))
    noise = np.zeros(length)
    phi, sigma = rng.uniform(0.0, 0.9), rng.uniform(0.02, 0.4)
    eps = rng.normal(0, sigma, length)
    for i in range(1, length):
        noise[i] = phi * noise[i - 1] + eps[i]
    level, amp = rng.normal(0, 100), math.exp(rng.normal(0, 2))
    return ts, level + amp * (daily + weekend + yearly + trend + shifts + noise)


def make_dataset(rng, n_series, per_series):
    X, F, Y = [], [], []
    for _ in range(n_series):
        ts, v = generate_series(rng, 24 * 7 * 12)
        for _ in range(per_series):
            s = int(rng.integers(0, len(v) - WINDOW - HORIZON))
            x, feats, mean, std, _ = model_inputs(ts[s:s + WINDOW], v[s:s + WINDOW])
            X.append(x)
            F.append(feats)
            Y.append(((v[s + WINDOW:s + WINDOW + HORIZON] - mean) / std).astype(np.float32))
    return np.stack(X), np.stack(F), np.stack(Y)


def init(rng, fan_in, fan_out):
    return (rng.normal(0, math.sqrt(2.0 / fan_in), (fan_in, fan_out))).astype(np.float32), np.zeros(fan_out, np.float32)


def forward(p, x, feats):
    inp = np.concatenate([x, feats.reshape(len(x), -1)], axis=1)
    h1 = np.maximum(inp @ p["w1"] + p["b1"], 0)
    h2 = np.maximum(h1 @ p["w2"] + p["b2"], 0)
    # Residual on the seasonal-naive guess keeps the MLP's job small: the value 24 steps back.
    naive = np.concatenate([x[:, -24:], x[:, -24:]], axis=1)[:, :HORIZON]
    return h2 @ p["w3"] + p["b3"] + naive, (inp, h1, h2)


def train(seed=20240601, steps=4000, batch=256, lr=1e-3):
    rng = np.random.default_rng(seed)
    X, F, Y = make_dataset(rng, 300, 80)
    Xv, Fv, Yv = make_dataset(np.random.default_rng(seed + 1), 40, 50)
    d_in = WINDOW + (WINDOW + HORIZON) * FEATURES
    p = {}
    p["w1"], p["b1"] = init(rng, d_in, HIDDEN)
    p["w2"], p["b2"] = init(rng, HIDDEN, HIDDEN)
    p["w3"], p["b3"] = init(rng, HIDDEN, HORIZON)
    p["w3"] *= 0.1
    m = {k: np.zeros_like(v) for k, v in p.items()}
    s = {k: np.zeros_like(v) for k, v in p.items()}
    for t in range(1, steps + 1):
        idx = rng.integers(0, len(X), batch)
        x, f, y = X[idx], F[idx], Y[idx]
        pred, (inp, h1, h2) = forward(p, x, f)
        g = 2.0 * (pred - y) / (batch * HORIZON)
        grads = {"w3": h2.T @ g, "b3": g.sum(0)}
        g2 = (g @ p["w3"].T) * (h2 > 0)
        grads["w2"], grads["b2"] = h1.T @ g2, g2.sum(0)
        g1 = (g2 @ p["w2"].T) * (h1 > 0)
        grads["w1"], grads["b1"] = inp.T @ g1, g1.sum(0)
        rate = lr * (0.5 * (1 + math.cos(math.pi * t / steps)))
        for k in p:
            m[k] = 0.9 * m[k] + 0.1 * grads[k]
            s[k] = 0.999 * s[k] + 0.001 * grads[k] ** 2
            p[k] -= (rate * (m[k] / (1 - 0.9 ** t)) / (np.sqrt(s[k] / (1 - 0.999 ** t)) + 1e-8)).astype(np.float32)
        if t % 1000 == 0 or t == steps:
            pv, _ = forward(p, Xv, Fv)
            naive = np.concatenate([Xv[:, -24:], Xv[:, -24:]], axis=1)[:, :HORIZON]
            print(f"step {t}: validation MSE (scaled) {np.mean((pv - Yv) ** 2):.4f}, "
                  f"seasonal naive {np.mean((naive - Yv) ** 2):.4f}")
    return p


def export(p, path):
    nodes = [
        helper.make_node("Flatten", ["time_features"], ["tf_flat"], axis=1),
        helper.make_node("Concat", ["values", "tf_flat"], ["inp"], axis=1),
        helper.make_node("MatMul", ["inp", "w1"], ["m1"]), helper.make_node("Add", ["m1", "b1"], ["a1"]),
        helper.make_node("Relu", ["a1"], ["h1"]),
        helper.make_node("MatMul", ["h1", "w2"], ["m2"]), helper.make_node("Add", ["m2", "b2"], ["a2"]),
        helper.make_node("Relu", ["a2"], ["h2"]),
        helper.make_node("MatMul", ["h2", "w3"], ["m3"]), helper.make_node("Add", ["m3", "b3"], ["mlp"]),
        # seasonal-naive residual: the last 24 scaled values, repeated to the horizon
        helper.make_node("Slice", ["values", "last24_start", "last24_end", "axis1"], ["last24"]),
        helper.make_node("Concat", ["last24", "last24"], ["naive"], axis=1),
        helper.make_node("Add", ["mlp", "naive"], ["forecast"]),
    ]
    inits = [numpy_helper.from_array(v, k) for k, v in sorted(p.items())]
    inits += [numpy_helper.from_array(np.array([WINDOW - 24], np.int64), "last24_start"),
              numpy_helper.from_array(np.array([WINDOW], np.int64), "last24_end"),
              numpy_helper.from_array(np.array([1], np.int64), "axis1")]
    graph = helper.make_graph(
        nodes, "isl_forecast_mlp",
        [helper.make_tensor_value_info("values", TensorProto.FLOAT, ["batch", WINDOW]),
         helper.make_tensor_value_info("time_features", TensorProto.FLOAT, ["batch", WINDOW + HORIZON, FEATURES])],
        [helper.make_tensor_value_info("forecast", TensorProto.FLOAT, ["batch", HORIZON])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="isl models/forecast/train.py")
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())


def rfc3339(t):
    return datetime.fromtimestamp(t, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def references(path, onnx_path):
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(99)
    cases = []
    for k, (length, horizon, as_text) in enumerate([(48, 30, False), (200, 48, True), (96, 1, False), (60, 24, True)]):
        ts, v = generate_series(rng, length + 10)
        ts, v = ts[10:], np.round(v[10:], 3)
        if k == 2:  # a 15-minute series
            ts = ts[0] + 900.0 * np.arange(length)
        x, feats, mean, std, future = model_inputs(ts, v)
        raw = sess.run(["forecast"], {"values": x[None], "time_features": feats[None]})[0][0]
        forecast = raw[:horizon].astype(np.float64) * std + mean
        cases.append({
            "timestamps": [rfc3339(t) for t in ts] if as_text else [int(t) for t in ts],
            "values": [float(a) for a in v],
            "horizon": horizon,
            "model_values": [float(a) for a in x],
            "model_time_features": [[float(a) for a in row] for row in feats],
            "model_output": [float(a) for a in raw],
            "expected_timestamps": [rfc3339(t) for t in future[:horizon]] if as_text else [int(t) for t in future[:horizon]],
            "expected_forecast": [float(a) for a in forecast],
        })
    path.write_text(json.dumps({"window": WINDOW, "horizon": HORIZON, "cases": cases}, indent=1) + "\n")


def main():
    p = train()
    out = HERE / "forecast.onnx"
    export(p, out)
    references(HERE / "reference.json", out)
    print(f"wrote {out} ({out.stat().st_size} bytes) and reference.json")


if __name__ == "__main__":
    main()
