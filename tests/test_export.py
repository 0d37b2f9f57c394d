"""Export: SavedModel and ONNX artifacts with every block's output, verified against Keras.

One tiny model with every tricky part (inference-mode batch norm with non-trivial statistics,
grouped bottleneck convolution, squeeze-excite, a highway block) is saved to ``.keras`` and
exported once through the CLI (module fixture); the tests read that artifact. The other tests
convert only tiny models.
"""

import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

keras = pytest.importorskip("keras")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from keras_resnet_lab.cli import main  # noqa: E402
from keras_resnet_lab.export import (  # noqa: E402
    ExportParityError,
    export_model,
    export_onnx,
    export_savedmodel,
    feature_tensors,
    features_model,
    load_manifest,
)
from keras_resnet_lab.layers import HighwayBlock, ResidualBlock  # noqa: E402
from keras_resnet_lab.models import conv_stem, from_keras_applications, head  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONSUMER = os.path.join(ROOT, "export", "inspect_onnx.py")
NAMES = ["stem", "stage1_block1", "stage2_block1", "stage2_block2", "output"]
PREPROCESSING = {"description": "pixels / 255, standardized", "scale": 1 / 255,
                 "mean": 0.5, "std": 0.25}
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")


def _randomize_batch_norm(model, seed=0):
    """Give every batch norm non-trivial statistics and affine parameters."""
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        shape = tuple(weight.shape)
        if "moving_mean" in weight.path or weight.path.endswith("beta"):
            weight.assign(rng.normal(0, 0.2, shape).astype("float32"))
        elif "moving_variance" in weight.path or weight.path.endswith("gamma"):
            weight.assign(rng.uniform(0.5, 1.5, shape).astype("float32"))


def zoo_model():
    """stem -> grouped bottleneck + SE residual block -> strided highway -> v2 residual."""
    keras.utils.set_random_seed(1)
    inputs = keras.Input((8, 8, 3), name="input")
    x = conv_stem(8)(inputs)
    x = ResidualBlock(16, bottleneck=True, groups=2, se_ratio=0.25, shortcut="B",
                      name="stage1_block1")(x)
    x = HighwayBlock(16, strides=2, gate_bias=-1.0, name="stage2_block1")(x)
    x = ResidualBlock(16, preact=True, name="stage2_block2")(x)
    x = head(x, True, 3, None, None)
    model = keras.Model(inputs, x, name="zoo")
    _randomize_batch_norm(model)
    return model


def _keras_features(model, x):
    features, outputs = features_model(model)
    return {o.name: np.asarray(v) for o, v in zip(outputs, features(x, training=False))}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The zoo model saved to .keras and exported (both formats) by the CLI, in-process."""
    root = tmp_path_factory.mktemp("export")
    model = zoo_model()
    path = str(root / "zoo.keras")
    model.save(path)
    out = root / "artifacts"
    code = main(["export", path, "--format", "both", "--out", str(out),
                 "--preprocessing", json.dumps(PREPROCESSING)])
    assert code == 0
    return model, path, out


def test_loaded_model_matches_and_grouped_conv_is_exported_grouped(exported):
    model, path, out = exported
    loaded = keras.models.load_model(path, compile=False)
    x = np.random.default_rng(3).standard_normal((4, 8, 8, 3)).astype("float32")
    np.testing.assert_allclose(loaded(x), model(x), atol=1e-6)
    proto = onnx.load(str(out / "onnx" / "model.onnx"))
    groups = [a.i for n in proto.graph.node if n.op_type == "Conv" for a in n.attribute
              if a.name == "group"]
    assert 2 in groups
    ops = {n.op_type for n in proto.graph.node}
    assert "Sigmoid" in ops  # squeeze-excite and the highway gate
    assert not ops & {"StatefulPartitionedCall", "PartitionedCall"}


def test_onnx_outputs_named_after_blocks_with_dynamic_batch(exported):
    model, _, out = exported
    file = str(out / "onnx" / "model.onnx")
    proto = onnx.load(file)
    onnx.checker.check_model(proto, full_check=True)
    assert [o.name for o in proto.graph.output] == NAMES
    assert [i.name for i in proto.graph.input] == ["input"]
    batch_dim = proto.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch_dim.dim_param and not batch_dim.dim_value
    session = ort.InferenceSession(file, providers=["CPUExecutionProvider"])
    for batch in (1, 5):
        x = np.random.default_rng(batch).standard_normal((batch, 8, 8, 3)).astype("float32")
        got = dict(zip(NAMES, session.run(NAMES, {"input": x})))
        want = _keras_features(model, x)
        assert got["stage1_block1"].shape == (batch, 8, 8, 16)  # NHWC kept
        assert got["stage2_block1"].shape == (batch, 4, 4, 16)
        for name in NAMES:
            np.testing.assert_allclose(got[name], want[name], atol=1e-4, rtol=0)
        assert np.abs(got["stage2_block2"] - got["stage2_block1"]).max() > 1e-2


def test_onnx_input_and_every_output_share_the_batch_axis_name(exported):
    _, _, out = exported
    proto = onnx.load(str(out / "onnx" / "model.onnx"))
    values = list(proto.graph.input) + list(proto.graph.output)
    assert len(values) == 1 + len(NAMES)
    for value in values:
        dim = value.type.tensor_type.shape.dim[0]
        assert dim.dim_param == "batch" and not dim.HasField("dim_value"), value.name
    assert load_manifest(out / "onnx").artifact["batch_axis"] == "batch"
    inferred = onnx.shape_inference.infer_shapes(proto, strict_mode=True)
    assert all(v.type.tensor_type.shape.dim[0].dim_param == "batch"
               for v in inferred.graph.output)


def _op_count(file, op):
    return sum(node.op_type == op for node in onnx.load(str(file)).graph.node)


def _round_trips(file):
    """Transpose nodes that undo the Transpose feeding them (NCHW -> NHWC -> NCHW)."""
    nodes = onnx.load(str(file)).graph.node
    made_by = {out: node for node in nodes for out in node.output}
    return sum(node.op_type == "Transpose" and node.input[0] in made_by
               and made_by[node.input[0]].op_type == "Transpose" for node in nodes)


def test_optimize_removes_transpose_round_trips_with_outputs_unchanged(exported, tmp_path):
    model, _, out = exported
    manifest = export_onnx(model, tmp_path / "onnx", optimize=True)
    plain, simplified = out / "onnx" / "model.onnx", tmp_path / "onnx" / "model.onnx"
    optimization = manifest.artifact["optimization"]
    assert optimization["tool"] == "onnxsim" and manifest.versions["onnxsim"]
    assert optimization["transpose_before"] == _op_count(plain, "Transpose")
    assert optimization["transpose_after"] == _op_count(simplified, "Transpose")
    # after the stem and stage1_block1: NHWC for the graph output, back to NCHW for the next
    # block; onnxsim lets the next block read the NCHW result instead
    assert _round_trips(plain) == 2 and _round_trips(simplified) == 0
    assert optimization["transpose_after"] == optimization["transpose_before"] - 2
    assert optimization["changed_ops"]["Transpose"] == [optimization["transpose_before"],
                                                        optimization["transpose_after"]]
    assert manifest.parity["passed"] and manifest.parity["worst_diff"] < 1e-4
    proto = onnx.load(str(simplified))
    onnx.checker.check_model(proto, full_check=True)
    assert [o.name for o in proto.graph.output] == NAMES
    assert {p.key for p in proto.metadata_props} == {"keras_resnet_lab.outputs"}
    assert all(v.type.tensor_type.shape.dim[0].dim_param == "batch"
               for v in list(proto.graph.input) + list(proto.graph.output))
    x = np.random.default_rng(4).standard_normal((3, 8, 8, 3)).astype("float32")
    before = ort.InferenceSession(str(plain), providers=["CPUExecutionProvider"])
    after = ort.InferenceSession(str(simplified), providers=["CPUExecutionProvider"])
    want = _keras_features(model, x)
    for name, a, b in zip(NAMES, before.run(NAMES, {"input": x}), after.run(NAMES, {"input": x})):
        assert a.shape == b.shape == want[name].shape  # NHWC kept
        np.testing.assert_allclose(b, a, atol=1e-5, rtol=0)
        np.testing.assert_allclose(b, want[name], atol=1e-4, rtol=0)


def _readme_blocks(word):
    """The ```python blocks of export/README.md that mention ``word``, in order."""
    with open(os.path.join(ROOT, "export", "README.md"), encoding="utf-8") as handle:
        text = handle.read()
    blocks = [part.split("```", 1)[0] for part in text.split("```python\n")[1:]]
    return [block for block in blocks if word in block]


def test_openvino_example_of_the_readme_reads_every_output(exported, tmp_path, monkeypatch):
    pytest.importorskip("openvino")
    model, _, out = exported
    blocks = _readme_blocks("openvino") + _readme_blocks("ov.convert_model")
    assert len(blocks) == 2
    shutil.copytree(out, tmp_path / "exports")
    monkeypatch.chdir(tmp_path)
    namespace = {}
    for block in blocks:
        exec(compile(block, "export/README.md", "exec"), namespace)  # noqa: S102
    x = namespace["x"]
    assert x.shape == (2, 8, 8, 3)
    want = _keras_features(model, x)
    for found in (namespace["outputs"], namespace["feature_outputs"]):
        assert sorted(found) == sorted(NAMES)  # the ONNX file and `features`: every output
        for name in NAMES:
            scale = max(1.0, float(np.abs(want[name]).max()))
            np.testing.assert_allclose(found[name], want[name], atol=1e-4 * scale, rtol=0)
    assert namespace["only_output"] == ["output"]  # read_model on the SavedModel folder
    hint = namespace["compiled"].get_property("INFERENCE_PRECISION_HINT")
    assert str(hint).endswith("f32") or "float32" in str(hint)


def test_manifest_describes_outputs_input_versions_and_parity(exported, tmp_path):
    model, _, out = exported
    for kind in ("onnx", "savedmodel"):
        manifest = load_manifest(out / kind)
        assert manifest.artifact["format"] == kind
        assert [o["name"] for o in manifest.outputs] == NAMES
        by_name = {o["name"]: o for o in manifest.outputs}
        assert by_name["stage2_block1"]["block_index"] == 1
        assert by_name["stage2_block1"]["stage"] == 2
        assert by_name["stage2_block1"]["layer_type"] == "HighwayBlock"
        assert by_name["stage2_block2"]["shape"] == [None, 4, 4, 16]
        assert by_name["stem"]["role"] == "stem" and by_name["stem"]["block_index"] is None
        assert by_name["output"]["shape"] == [None, 3]
        assert {o["dtype"] for o in manifest.outputs} == {"float32"}
        assert manifest.input["shape"] == [None, 8, 8, 3]
        assert manifest.input["layout"] == "NHWC"
        assert manifest.input["preprocessing"]["mean"] == [0.5]
        assert manifest.model["n_blocks"] == 3 and manifest.model["params"] == \
            model.count_params()
        for lib in ("keras", "tensorflow", "numpy", "keras_resnet_lab"):
            assert manifest.versions[lib]
        parity = manifest.parity
        assert parity["passed"] and parity["tolerance"] == 1e-4
        assert set(NAMES) <= set(parity["max_abs_diff"])
        assert parity["worst_output"] == max(parity["scaled_diff"],
                                             key=parity["scaled_diff"].get)
        assert parity["worst_diff"] == parity["max_abs_diff"][parity["worst_output"]]
        assert parity["worst_diff"] < 1e-4
    onnx_manifest = load_manifest(out / "onnx")
    assert onnx_manifest.versions["tf2onnx"] and onnx_manifest.artifact["opset"] == 17
    assert onnx_manifest.parity["max_abs_diff"]["stage1_block1"] > 0  # really measured
    assert "serve/output" in load_manifest(out / "savedmodel").parity["max_abs_diff"]
    onnx_manifest.plot(tmp_path / "parity.png")
    with open(tmp_path / "parity.png", "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"


def test_saved_model_cli_lists_both_signatures(exported):
    _, _, out = exported
    cli = shutil.which("saved_model_cli")
    if cli is None:
        pytest.skip("saved_model_cli (ships with tensorflow) is not on PATH")
    result = subprocess.run([cli, "show", "--all", "--dir", str(out / "savedmodel")],
                            capture_output=True, text=True, env=ENV, timeout=120)
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "signature_def['serve']" in text and "signature_def['features']" in text
    features = text.split("signature_def['features']")[1].split("signature_def[")[0]
    for name in NAMES:
        assert f"outputs['{name}']" in features
    assert "shape: (-1, 8, 8, 3)" in features and "shape: (-1, 4, 4, 16)" in features


def test_savedmodel_loads_in_fresh_process_without_the_library(exported, tmp_path):
    model, _, out = exported
    x = np.random.default_rng(7).standard_normal((3, 8, 8, 3)).astype("float32")
    np.save(tmp_path / "x.npy", x)
    script = textwrap.dedent(f"""
        import json, sys
        import numpy as np
        import tensorflow as tf
        loaded = tf.saved_model.load({str(out / 'savedmodel')!r})
        x = tf.constant(np.load({str(tmp_path / 'x.npy')!r}))
        result = {{}}
        for batch in (1, 3):
            feats = loaded.signatures["features"](input=x[:batch])
            serve = loaded.signatures["serve"](input=x[:batch])
            result[batch] = {{"features": {{k: v.numpy().tolist() for k, v in feats.items()}},
                             "serve": {{k: v.numpy().tolist() for k, v in serve.items()}}}}
        result["library_imported"] = any(m.startswith("keras_resnet_lab") for m in sys.modules)
        print(json.dumps(result))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=ENV, cwd=str(tmp_path), timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["library_imported"] is False
    want = _keras_features(model, x)
    for batch in ("1", "3"):
        feats = result[batch]["features"]
        assert sorted(feats) == sorted(NAMES)
        for name in NAMES:
            np.testing.assert_allclose(np.array(feats[name]), want[name][:int(batch)],
                                       atol=1e-5)
        assert list(result[batch]["serve"]) == ["output"]
        np.testing.assert_allclose(np.array(result[batch]["serve"]["output"]),
                                   want["output"][:int(batch)], atol=1e-5)


def _blocked_env(tmp_path, *modules):
    """An environment in which importing ``modules`` raises ImportError."""
    stubs = tmp_path / "stubs"
    for name in modules:
        (stubs / name).mkdir(parents=True, exist_ok=True)
        (stubs / name / "__init__.py").write_text(
            f"raise ImportError('{name} is blocked in this consumer test')\n")
    return dict(ENV, PYTHONPATH=str(stubs))


def _consumer(env, cwd, *args):
    return subprocess.run([sys.executable, CONSUMER, *args], capture_output=True, text=True,
                          env=env, cwd=str(cwd), timeout=120)


def test_consumer_reads_artifact_without_tensorflow(exported, tmp_path):
    model, _, out = exported
    env = _blocked_env(tmp_path, "tensorflow", "keras", "keras_resnet_lab", "tf2onnx")
    guard = subprocess.run([sys.executable, "-c", "import tensorflow"], capture_output=True,
                           text=True, env=env, cwd=str(tmp_path), timeout=60)
    assert guard.returncode != 0 and "blocked" in guard.stderr  # the guarantee is real
    x = np.random.default_rng(11).standard_normal((4, 8, 8, 3)).astype("float32")
    np.save(tmp_path / "batch.npy", x)
    proc = _consumer(env, tmp_path, str(out / "onnx"), "--npy", str(tmp_path / "batch.npy"),
                     "--json", str(tmp_path / "stats.json"))
    assert proc.returncode == 0, proc.stderr
    for name in NAMES[:-1]:
        assert name in proc.stdout
    with open(tmp_path / "stats.json") as handle:
        stats = json.load(handle)
    assert [row["name"] for row in stats["blocks"]] == NAMES[:-1]
    want = _keras_features(model, x)
    norms = {k: np.linalg.norm(v.reshape(4, -1).astype(np.float64), axis=1)
             for k, v in want.items()}
    for i, row in enumerate(stats["blocks"]):
        ref = want[row["name"]]
        assert row["mean"] == pytest.approx(float(ref.mean()), abs=1e-4)
        assert row["std"] == pytest.approx(float(ref.std()), abs=1e-4)
        if i:
            ratio = np.mean(norms[row["name"]] / norms[NAMES[i - 1]])
            assert row["norm_ratio"] == pytest.approx(ratio, rel=1e-4)
    assert stats["blocks"][0]["norm_ratio"] is None
    assert stats["blocks"][3]["relative_change"] is not None  # same shape as stage2_block1
    assert stats["blocks"][2]["relative_change"] is None  # strided block: shapes differ
    assert stats["output"]["argmax"] == [int(i) for i in want["output"].argmax(1)]


def test_consumer_image_uses_manifest_preprocessing(exported, tmp_path):
    pil = pytest.importorskip("PIL.Image")
    model, _, out = exported
    pixels = np.random.default_rng(5).integers(0, 256, (8, 8, 3)).astype(np.uint8)
    pil.fromarray(pixels).save(tmp_path / "image.png")
    env = _blocked_env(tmp_path, "tensorflow", "keras", "keras_resnet_lab")
    proc = _consumer(env, tmp_path, str(out / "onnx" / "model.onnx"), "--image",
                     str(tmp_path / "image.png"), "--json", str(tmp_path / "stats.json"))
    assert proc.returncode == 0, proc.stderr
    with open(tmp_path / "stats.json") as handle:
        stats = json.load(handle)
    x = ((pixels.astype(np.float32) / 255 - 0.5) / 0.25)[None]
    want = _keras_features(model, x)
    assert stats["blocks"][1]["mean"] == pytest.approx(float(want["stage1_block1"].mean()),
                                                       abs=1e-4)
    blocked = _blocked_env(tmp_path, "tensorflow", "PIL")
    proc = _consumer(blocked, tmp_path, str(out / "onnx"), "--image",
                     str(tmp_path / "image.png"))
    assert proc.returncode == 2 and "needs Pillow" in proc.stderr and "--npy" in proc.stderr


def _leftovers(folder):
    return [name for name in os.listdir(folder) if name.startswith(".")]


def test_onnx_parity_failure_names_worst_output_and_leaves_nothing(tmp_path):
    model = zoo_model()
    target = tmp_path / "new" / "deeper" / "onnx"
    with pytest.raises(ExportParityError, match=r"output '[a-z0-9_]+'.*tolerance 0") as info:
        export_onnx(model, target, tolerance=0.0)
    report = info.value.report
    assert report.worst_output in NAMES and report.worst_diff > 0
    assert report.worst_output in str(info.value)
    assert not (tmp_path / "new").exists()  # folders the export created are gone too
    assert os.listdir(tmp_path) == []


def test_savedmodel_parity_failure_from_a_deviating_artifact(tmp_path, monkeypatch):
    from keras_resnet_lab.export import savedmodel

    real = savedmodel.savedmodel_outputs

    def deviating(path, x):
        found = real(path, x)
        found["stage2_block1"] = found["stage2_block1"] + 0.05
        return found

    monkeypatch.setattr(savedmodel, "savedmodel_outputs", deviating)
    with pytest.raises(ExportParityError, match="'stage2_block1' \\(block 1, stage 2\\)"):
        export_savedmodel(zoo_model(), tmp_path / "sm")
    assert os.listdir(tmp_path) == []


def test_overwrite_refused_then_replaced_atomically(tmp_path):
    model = zoo_model()
    target = tmp_path / "onnx"
    target.mkdir()
    (target / "old.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export_onnx(model, target)
    # overwrite=True replaces only an artifact of ours (a manifest of ours), never this
    with pytest.raises(FileExistsError, match="not an artifact of keras_resnet_lab"):
        export_onnx(model, target, overwrite=True)
    assert (target / "old.txt").read_text() == "keep me"
    assert _leftovers(tmp_path) == []
    target = tmp_path / "ours"
    export_onnx(model, target)
    manifest = export_onnx(model, target, intermediate=False, overwrite=True)
    assert sorted(os.listdir(target)) == ["manifest.json", "model.onnx"]
    assert _leftovers(tmp_path) == []
    assert [o["name"] for o in manifest.outputs] == ["output"]
    assert list(manifest.parity["max_abs_diff"]) == ["output"]
    session = ort.InferenceSession(str(target / "model.onnx"),
                                   providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == ["output"]


def test_unsupported_models_and_paths_give_clear_errors(tmp_path, monkeypatch):
    inputs = keras.Input((8, 8, 3))
    no_blocks = keras.Model(inputs, keras.layers.Conv2D(2, 3)(inputs), name="convnet")
    with pytest.raises(ValueError, match="cannot export model 'convnet'.*no residual"):
        export_onnx(no_blocks, tmp_path / "a")
    x = keras.layers.Conv2D(4, 3, padding="same", name="stem_conv")(inputs)
    x = ResidualBlock(4, name="stage1_block1")(x)
    x = keras.layers.Dropout(0.1, name="dropout")(x)
    x = ResidualBlock(4, name="stage1_block2")(x)
    with pytest.raises(ValueError, match="not a chain.*'dropout'"):
        features_model(keras.Model(inputs, x))
    block = ResidualBlock(4, name="stage1_block1")
    y = keras.layers.Conv2D(4, 3, padding="same", name="stem_conv")(inputs)
    twice = keras.Model(inputs, block(block(y)))
    with pytest.raises(ValueError, match="applied 2 times"):
        features_model(twice)
    with pytest.raises(ValueError, match="`opset` must be one of"):
        export_onnx(zoo_model(), tmp_path / "b", opset=19)
    with pytest.raises(ValueError, match="`tolerance` must lie in"):
        export_savedmodel(zoo_model(), tmp_path / "c", tolerance=-1)
    with pytest.raises(ValueError, match="`sample` must have shape"):
        export_savedmodel(zoo_model(), tmp_path / "d", sample=np.zeros((2, 4, 4, 3)))
    with pytest.raises(ValueError, match="unknown keys"):
        export_onnx(zoo_model(), tmp_path / "e", preprocessing={"scaling": 2})
    assert os.listdir(tmp_path) == []
    afile = tmp_path / "file.txt"
    afile.write_text("x")
    with pytest.raises(NotADirectoryError, match="is below the file .*file.txt, not a folder"):
        export_onnx(zoo_model(), afile / "onnx")

    def denied(path, mode=0o777):
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(os, "mkdir", denied)
    with pytest.raises(PermissionError, match="cannot write the export to"):
        export_savedmodel(zoo_model(), tmp_path / "ro" / "sm")


def test_sequential_model_is_exported_through_a_functional_wrapper(tmp_path):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((6, 6, 2)),
        keras.layers.Conv2D(4, 3, padding="same", name="stem_conv"),
        ResidualBlock(4, name="stage1_block1"),
        ResidualBlock(8, strides=2, shortcut="B", name="stage2_block1"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(2, name="predictions"),
    ])
    assert [o.name for o, _ in feature_tensors(model)] == [
        "stem", "stage1_block1", "stage2_block1", "output"]
    manifest = export_onnx(model, tmp_path / "onnx")
    assert manifest.outputs[0]["layer"] == "stem_conv"
    assert manifest.parity["passed"]


SMALL = dict(input_shape=(8, 8, 3), num_classes=3)
BUILDERS = {
    "resnet_v1_A": lambda M: M.cifar_network(1, widths=(4, 8), shortcut="A", **SMALL),
    "resnet_v2": lambda M: M.cifar_network(1, widths=(4, 8), preact=True, **SMALL),
    "plain": lambda M: M.cifar_resnet(8, plain=True, **SMALL),
    "wide": lambda M: M.wide_resnet(10, 1, **SMALL),
    "highway": lambda M: M.highway_net(1, widths=(4, 8), **SMALL),
    "multi_residual": lambda M: M.multi_residual_net(8, 2, **SMALL),
    "residual_mlp": lambda M: M.residual_mlp(2, 8, input_shape=(6,), num_classes=3),
    "resnext": lambda M: M.resnext(50, 2, 4, input_shape=(16, 16, 3), num_classes=3,
                                   stem_width=8),
}


@pytest.mark.parametrize("builder", sorted(BUILDERS))
def test_every_builder_exports_with_parity(builder, tmp_path):
    from keras_resnet_lab import models

    keras.utils.set_random_seed(0)
    model = BUILDERS[builder](models)
    _randomize_batch_norm(model)
    manifest = export_model(model, tmp_path, formats="onnx")["onnx"]
    expected = ["stem"] + [b.name for b in models.blocks(model)] + ["output"]
    assert [o["name"] for o in manifest.outputs] == expected
    assert manifest.parity["passed"]
    session = ort.InferenceSession(str(tmp_path / "onnx" / "model.onnx"),
                                   providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == expected


@pytest.mark.parametrize("preact", [False, True], ids=["v1", "v2"])
def test_converted_keras_applications_model(preact, tmp_path):
    """A two-stack ResNet built by keras.applications' own ResNet code (v1: biases before
    batch norms; v2: stride in a stack's last block), converted, exported, and the ONNX output
    compared with the keras.applications model itself."""
    try:
        from keras.src.applications import resnet as kr
    except ImportError:
        pytest.skip("keras.src.applications.resnet (to build a tiny keras.applications "
                    "ResNet) is not available in this Keras")
    stack = kr.stack_residual_blocks_v2 if preact else kr.stack_residual_blocks_v1

    def stack_fn(x):  # keras.applications' layout: v2 strides all stacks but the last
        x = stack(x, 4, 2, stride1=2 if preact else 1, name="conv2")
        return stack(x, 8, 2, stride1=1 if preact else 2, name="conv3")

    keras.utils.set_random_seed(0)
    base = kr.ResNet(stack_fn, preact, True, weights=None, input_shape=(32, 32, 3), classes=3,
                     classifier_activation=None, name="tiny_applications")
    _randomize_batch_norm(base)
    model = from_keras_applications(base)
    manifest = export_model(model, tmp_path, formats="onnx")["onnx"]
    assert [o["name"] for o in manifest.outputs] == [
        "stem", "stage1_block1", "stage1_block2", "stage2_block1", "stage2_block2", "output"]
    assert manifest.parity["passed"]
    x = np.random.default_rng(0).standard_normal((2, 32, 32, 3)).astype("float32")
    session = ort.InferenceSession(str(tmp_path / "onnx" / "model.onnx"),
                                   providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(["output"], {"input": x})[0], base(x), atol=1e-4)


@pytest.mark.slow
def test_converted_keras_applications_resnet50v2(tmp_path):
    base = keras.applications.ResNet50V2(weights=None, input_shape=(32, 32, 3),
                                         include_top=False, pooling="avg")
    model = from_keras_applications(base)
    manifest = export_model(model, tmp_path, formats="onnx")["onnx"]
    assert len(manifest.outputs) == 18 and manifest.outputs[-1]["shape"] == [None, 2048]
    assert manifest.parity["passed"]
    x = np.random.default_rng(0).standard_normal((2, 32, 32, 3)).astype("float32")
    session = ort.InferenceSession(str(tmp_path / "onnx" / "model.onnx"),
                                   providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(["output"], {"input": x})[0], base(x), atol=1e-4)


def test_cli_refuses_existing_then_forces_and_reports_errors(exported, capsys, tmp_path):
    _, path, shared = exported
    out = tmp_path / "cli"
    shutil.copytree(shared / "onnx", out / "onnx")
    before = os.path.getmtime(out / "onnx" / "model.onnx")
    assert main(["export", path, "--format", "both", "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert os.path.getmtime(out / "onnx" / "model.onnx") == before
    assert sorted(os.listdir(out)) == ["onnx"]  # nothing written, not even the savedmodel
    assert main(["export", path, "--format", "onnx", "--out", str(out), "--force",
                 "--no-intermediate", "--opset", "13", "--tolerance", "1e-3"]) == 0
    assert "parity max abs diff" in capsys.readouterr().out
    manifest = load_manifest(out / "onnx")
    assert manifest.artifact["opset"] == 13 and manifest.parity["tolerance"] == 1e-3
    assert [o["name"] for o in manifest.outputs] == ["output"]
    assert main(["export", str(out / "missing.keras"), "--out", str(out / "x")]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["export", path, "--out", str(out / "y"), "--preprocessing", "{bad"]) == 2
    assert "--preprocessing" in capsys.readouterr().err
