"""keras_resnet_lab.data: embedded digits, augmentation, tf.data pipelines, tfds access."""

from __future__ import annotations

import collections
import os
import time

import numpy as np
import pytest
import tensorflow as tf

from keras_resnet_lab import data
from keras_resnet_lab.data import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    CIFAR100_MEAN,
    CIFAR100_STD,
    DATASETS,
    DIGITS_NUM_CLASSES,
    IMAGENET_MEAN,
    IMAGENET_STD,
    DatasetNotFoundError,
    center_crop_resize,
    dataset_info,
    digit_layout,
    load_dataset,
    load_digits,
    normalize,
    pad_crop_flip,
    random_resized_crop_flip,
)

N_TRAIN, N_TEST = 1437, 360


def _collect(ds):
    images, labels = zip(*[(x.numpy(), y.numpy()) for x, y in ds])
    return np.concatenate(images), np.concatenate(labels)


# --------------------------------------------------------------------------------------------
# digits
# --------------------------------------------------------------------------------------------


def test_digits_shapes_dtypes_and_split_counts():
    (x_train, y_train), (x_test, y_test) = load_digits()
    assert x_train.shape == (N_TRAIN, 32, 32, 3)
    assert x_test.shape == (N_TEST, 32, 32, 3)
    assert x_train.dtype == np.float32 and x_test.dtype == np.float32
    assert y_train.dtype == np.int32 and y_test.dtype == np.int32
    assert y_train.min() == 0 and y_train.max() == DIGITS_NUM_CLASSES - 1
    assert y_test.min() == 0 and y_test.max() == DIGITS_NUM_CLASSES - 1


def test_digits_split_is_stratified_partition_of_the_real_data():
    from sklearn.datasets import load_digits as sklearn_load_digits

    bunch = sklearn_load_digits()
    (x_train, y_train), (x_test, y_test) = load_digits(normalize=False)
    # Stratified 80/20: every class keeps its share in the test split to within one image.
    per_class = np.bincount(bunch.target, minlength=10)
    test_counts = np.bincount(y_test, minlength=10)
    assert np.all(np.abs(test_counts - 0.2 * per_class) <= 1)
    np.testing.assert_array_equal(np.bincount(y_train, minlength=10) + test_counts, per_class)
    # Bilinear x3 with half-pixel centres samples every source pixel exactly at offset 1 of
    # its 3x3 block: the 8x8 originals come back out, so train + test == the real dataset.
    recovered = np.concatenate([x_train, x_test])[:, 5:28:3, 5:28:3, 0] * 16
    np.testing.assert_allclose(recovered, np.round(recovered), atol=1e-4)
    labels = np.concatenate([y_train, y_test])
    ours = collections.Counter(
        (img.astype(np.uint8).tobytes(), int(lab)) for img, lab in zip(np.round(recovered), labels)
    )
    real = collections.Counter(
        (img.astype(np.uint8).tobytes(), int(lab)) for img, lab in zip(bunch.images, bunch.target)
    )
    assert ours == real


def test_digits_train_normalization_per_channel():
    (x_train, _), (x_test, _) = load_digits()
    mean = x_train.mean(axis=(0, 1, 2), dtype=np.float64)
    std = x_train.std(axis=(0, 1, 2), dtype=np.float64)
    np.testing.assert_allclose(mean, 0.0, atol=1e-5)
    np.testing.assert_allclose(std, 1.0, atol=1e-5)
    # The test set uses the train constants: close to, not exactly, standardized.
    assert abs(x_test.mean(dtype=np.float64)) < 0.05
    # The three channels are the replicated grey value.
    np.testing.assert_array_equal(x_train[..., 0], x_train[..., 2])


def test_digits_unnormalized_range():
    (x_train, _), _ = load_digits(normalize=False)
    assert x_train.min() == 0.0
    assert x_train.max() == pytest.approx(1.0)


def test_digits_identical_on_two_calls_and_cache_not_corruptible():
    (a_train, a_labels), (a_test, _) = load_digits()
    snapshot = a_train.copy()
    a_train[:] = 123.0  # callers get their own copy
    a_labels[:] = 0
    (b_train, b_labels), (b_test, _) = load_digits()
    np.testing.assert_array_equal(b_train, snapshot)
    assert b_labels.max() == 9
    np.testing.assert_array_equal(a_test, b_test)


def test_digits_digit_lies_inside_a_constant_border():
    assert digit_layout(32) == (24, 4)
    (x_raw, _), _ = load_digits(normalize=False)
    border = np.ones((32, 32), bool)
    border[4:28, 4:28] = False
    assert np.all(x_raw[:, border] == 0.0)
    assert np.all(x_raw[:, 4:28, 4:28].max(axis=(1, 2, 3)) > 0.5)  # every digit is there
    (x_norm, _), _ = load_digits()
    border_values = x_norm[:, border]
    assert np.all(border_values == border_values.flat[0])
    assert border_values.flat[0] < 0  # background is below the mean


def test_digits_image_size_16_and_one_channel():
    assert digit_layout(16) == (12, 2)
    (x_train, _), (x_test, _) = load_digits(image_size=16, channels=1, normalize=False)
    assert x_train.shape == (N_TRAIN, 16, 16, 1)
    assert x_test.shape == (N_TEST, 16, 16, 1)
    assert np.all(x_train[:, :2] == 0) and np.all(x_train[:, 14:] == 0)
    assert np.all(x_train[:, :, :2] == 0) and np.all(x_train[:, :, 14:] == 0)


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"image_size": 7}, "image_size"),
        ({"image_size": 32.0}, "image_size"),
        ({"image_size": True}, "image_size"),
        ({"channels": 2}, "channels"),
        ({"normalize": "yes"}, "normalize"),
    ],
)
def test_digits_bad_arguments(kwargs, argument):
    value = next(iter(kwargs.values()))
    with pytest.raises(ValueError, match=argument) as info:
        load_digits(**kwargs)
    assert repr(value) in str(info.value)


# --------------------------------------------------------------------------------------------
# augmentation
# --------------------------------------------------------------------------------------------


def _random_image(shape, seed=0):
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


def test_pad_crop_flip_is_a_shift_or_flip_of_the_zero_padded_image():
    image = _random_image((8, 8, 3))
    padded = np.pad(image, ((2, 2), (2, 2), (0, 0)))
    crops = [padded[i : i + 8, j : j + 8] for i in range(5) for j in range(5)]
    candidates = crops + [c[:, ::-1] for c in crops]
    outputs = []
    for s in range(12):
        out, label = pad_crop_flip(image, 7, pad=2, flip=True, seed=tf.constant([s, 1]))
        out = out.numpy()
        assert out.shape == image.shape and out.dtype == np.float32 and label == 7
        assert any(np.array_equal(out, c) for c in candidates)
        outputs.append(out)
    assert sum(not np.array_equal(o, image) for o in outputs) >= 6  # it really augments
    assert len({o.tobytes() for o in outputs}) > 3
    again, _ = pad_crop_flip(image, 7, pad=2, seed=tf.constant([3, 1]))
    np.testing.assert_array_equal(again.numpy(), outputs[3])  # stateless: reproducible


def test_pad_crop_flip_without_pad_or_flip_is_identity_and_flip_only_mirrors():
    image = _random_image((6, 6, 1))
    out, _ = pad_crop_flip(image, 0, pad=0, flip=False, seed=tf.constant([1, 2]))
    np.testing.assert_array_equal(out.numpy(), image)
    flipped = {pad_crop_flip(image, 0, pad=0, seed=tf.constant([s, 0]))[0].numpy().tobytes()
               for s in range(16)}
    assert flipped == {image.tobytes(), image[:, ::-1].copy().tobytes()}


def test_random_resized_crop_flip_shape_range_and_determinism():
    image = _random_image((40, 60, 3))
    out, label = random_resized_crop_flip(image, 3, size=16, seed=tf.constant([0, 5]))
    assert out.shape == (16, 16, 3) and out.dtype == tf.float32 and label == 3
    assert out.numpy().min() >= -1e-5 and out.numpy().max() <= 1 + 1e-5
    same, _ = random_resized_crop_flip(image, 3, size=16, seed=tf.constant([0, 5]))
    np.testing.assert_array_equal(out.numpy(), same.numpy())
    other, _ = random_resized_crop_flip(image, 3, size=16, seed=tf.constant([9, 9]))
    assert not np.allclose(out.numpy(), other.numpy())
    # A full-area, square crop without flip is just the resized image.
    square = _random_image((24, 24, 3))
    whole, _ = random_resized_crop_flip(square, 0, size=12, scale=(1.0, 1.0), ratio=(1.0, 1.0),
                                        flip=False, seed=tf.constant([1, 1]))
    expected = tf.image.resize(square, (12, 12), antialias=True)
    np.testing.assert_allclose(whole.numpy(), expected.numpy(), atol=1e-6)


def test_center_crop_resize_resizes_shorter_side_then_crops_the_centre():
    image = _random_image((20, 40, 3))
    out, _ = center_crop_resize(image, 0, size=8, resize=10)
    assert out.shape == (8, 8, 3)
    expected = tf.image.resize(image, (10, 20), antialias=True).numpy()[1:9, 6:14]
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-6)


def test_normalize_numbers():
    image = np.full((2, 2, 3), 0.5, np.float32)
    out = normalize(image, IMAGENET_MEAN, IMAGENET_STD).numpy()
    expected = (0.5 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    np.testing.assert_allclose(out[0, 0], expected, rtol=1e-6)
    for mean, std in [(CIFAR10_MEAN, CIFAR10_STD), (CIFAR100_MEAN, CIFAR100_STD)]:
        assert len(mean) == len(std) == 3
        assert all(0.4 < m < 0.52 for m in mean) and all(0.2 < s < 0.3 for s in std)


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda: pad_crop_flip(np.zeros((8, 8, 3)), 0, pad=-1), "pad"),
        (lambda: pad_crop_flip(np.zeros((8, 8, 3)), 0, mode="wrap"), "mode"),
        (lambda: pad_crop_flip(np.zeros((8, 8, 3)), 0, flip="no"), "flip"),
        (lambda: random_resized_crop_flip(np.zeros((8, 8, 3)), 0, size=0), "size"),
        (lambda: random_resized_crop_flip(np.zeros((8, 8, 3)), 0, scale=(0.0, 1.0)), "scale"),
        (lambda: random_resized_crop_flip(np.zeros((8, 8, 3)), 0, ratio=(2, 1)), "ratio"),
        (lambda: center_crop_resize(np.zeros((8, 8, 3)), 0, size=32, resize=16), "resize"),
        (lambda: normalize(np.zeros((2, 2, 3)), (0.5, 0.5), (1.0, 1.0, 1.0)), "mean and std"),
        (lambda: normalize(np.zeros((2, 2, 3)), (0.5,) * 3, (1.0, 0.0, 1.0)), "std"),
    ],
)
def test_augment_bad_arguments(call, argument):
    with pytest.raises(ValueError, match=argument):
        call()


# --------------------------------------------------------------------------------------------
# load_dataset("digits")
# --------------------------------------------------------------------------------------------


def test_load_dataset_digits_batches_and_eval_split_is_the_plain_arrays():
    ds = load_dataset("digits", split="test", batch_size=64)
    assert ds.element_spec[0].shape.as_list() == [None, 32, 32, 3]
    assert ds.element_spec[1].dtype == tf.int32
    sizes = [int(x.shape[0]) for x, _ in ds]
    assert sizes == [64] * 5 + [40]
    x, y = _collect(ds)
    _, (x_test, y_test) = load_digits()
    np.testing.assert_array_equal(x, x_test)  # test split: no shuffle, no augmentation
    np.testing.assert_array_equal(y, y_test)
    dropped = load_dataset("digits", split="test", batch_size=64, drop_remainder=True)
    assert [int(x.shape[0]) for x, _ in dropped] == [64] * 5


def test_load_dataset_digits_train_is_shuffled_augmented_and_reproducible():
    x, y = _collect(load_dataset("digits", batch_size=512))
    assert x.shape == (N_TRAIN, 32, 32, 3) and y.dtype == np.int32
    (x_train, y_train), _ = load_digits()
    np.testing.assert_array_equal(np.bincount(y), np.bincount(y_train))
    assert not np.array_equal(y, y_train)  # shuffled
    x2, y2 = _collect(load_dataset("digits", batch_size=512))
    np.testing.assert_array_equal(x, x2)  # same seed, same batches
    np.testing.assert_array_equal(y, y2)
    x3, _ = _collect(load_dataset("digits", batch_size=512, seed=1))
    assert not np.array_equal(x, x3)
    plain, _ = _collect(load_dataset("digits", batch_size=512, augment=False, shuffle=False))
    np.testing.assert_array_equal(plain, x_train)


def test_digits_augmentation_shifts_within_the_border_and_never_flips():
    (x_train, _), _ = load_digits()
    aug, _ = _collect(load_dataset("digits", batch_size=512, shuffle=False, augment=True))
    shifts = [(dy, dx) for dy in range(-4, 5) for dx in range(-4, 5)]
    changed = 0
    for original, augmented in zip(x_train[:100], aug[:100]):
        # Border 4 >= shift 4: a shifted digit equals np.roll (only background wraps around).
        match = [s for s in shifts if np.array_equal(np.roll(original, s, axis=(0, 1)), augmented)]
        assert match, "augmented digit is not a pure shift of the original"
        flips = [s for s in shifts
                 if np.array_equal(np.roll(original[:, ::-1], s, axis=(0, 1)), augmented)]
        assert not flips, "augmented digit is mirrored"
        changed += match != [(0, 0)]
    assert changed >= 90  # 1/81 chance per image of the zero shift


def test_load_dataset_digits_image_size_16():
    x, _ = next(iter(load_dataset("digits", split="test", batch_size=8, image_size=16)))
    assert x.shape == (8, 16, 16, 3)


# --------------------------------------------------------------------------------------------
# dataset_info and argument validation
# --------------------------------------------------------------------------------------------


def test_dataset_info():
    assert DATASETS == ("digits", "cifar10", "cifar100", "imagenet2012")
    digits = dataset_info("digits")
    assert (digits.num_classes, digits.input_shape) == (10, (32, 32, 3))
    assert (digits.train_split, digits.test_split) == ("train", "test")
    assert dataset_info("cifar10").as_dict()["num_classes"] == 10
    assert dataset_info("cifar100").num_classes == 100
    imagenet = dataset_info("imagenet2012")
    assert (imagenet.num_classes, imagenet.input_shape) == (1000, (224, 224, 3))
    assert (imagenet.train_split, imagenet.test_split) == ("train", "validation")
    assert "test" in imagenet.splits
    assert dataset_info("imagenet2012", image_size=64).input_shape == (64, 64, 3)


def test_unknown_dataset_lists_allowed_names():
    with pytest.raises(ValueError, match="mnist") as info:
        load_dataset("mnist")
    for name in DATASETS:
        assert name in str(info.value)
    with pytest.raises(ValueError, match="name"):
        dataset_info("svhn")


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"name": "digits", "split": "validation"}, "split"),
        ({"name": "cifar10", "split": "validation"}, "split"),
        ({"name": "imagenet2012", "split": "val"}, "split"),
        ({"name": "digits", "batch_size": 0}, "batch_size"),
        ({"name": "digits", "augment": "yes"}, "augment"),
        ({"name": "digits", "shuffle": 1}, "shuffle"),
        ({"name": "digits", "image_size": 4}, "image_size"),
        ({"name": "digits", "drop_remainder": None}, "drop_remainder"),
        ({"name": "digits", "seed": -1}, "seed"),
        ({"name": "cifar10", "manual_dir": "/tmp"}, "manual_dir"),
    ],
)
def test_load_dataset_bad_arguments(kwargs, argument):
    with pytest.raises(ValueError, match=argument):
        load_dataset(**kwargs)


# --------------------------------------------------------------------------------------------
# tensorflow-datasets pipelines (mocked: no data can be downloaded here)
# --------------------------------------------------------------------------------------------

tfds = pytest.importorskip("tensorflow_datasets")


def _mock(num_examples):
    # tfds ships no prepared metadata (dataset_info.json) for cifar10/cifar100/imagenet2012, so
    # the mock is told to build its random examples from the dataset classes' own feature specs
    # (MockPolicy.USE_CODE) instead of looking for metadata files. Only builder.as_dataset is
    # replaced: our real pipeline code (split mapping, SkipDecoding + decode, augmentation,
    # normalization, batching) runs unchanged on the mocked examples.
    return tfds.testing.mock_data(num_examples=num_examples,
                                  policy=tfds.testing.MockPolicy.USE_CODE)


@pytest.mark.parametrize(
    ("name", "num_classes", "mean", "std"),
    [("cifar10", 10, CIFAR10_MEAN, CIFAR10_STD), ("cifar100", 100, CIFAR100_MEAN, CIFAR100_STD)],
)
def test_cifar_pipelines_under_mock_data(tmp_path, name, num_classes, mean, std):
    with _mock(10):
        raw = list(tfds.builder(name, data_dir=tmp_path).as_dataset(split="test",
                                                                     as_supervised=True))
        test_x, test_y = _collect(load_dataset(name, split="test", batch_size=4,
                                               data_dir=tmp_path))
        train = load_dataset(name, split="train", batch_size=4, data_dir=tmp_path)
        train_x, train_y = _collect(train)
    assert train.element_spec[0].shape.as_list() == [None, 32, 32, 3]
    assert train_x.shape == (10, 32, 32, 3) and train_x.dtype == np.float32
    assert train_y.dtype == np.int32 and 0 <= train_y.min() and train_y.max() < num_classes
    # Eval split: exactly (pixels / 255 - mean) / std of the source images, in order.
    pixels = np.stack([x.numpy() for x, _ in raw]).astype(np.float32) / 255
    np.testing.assert_allclose(test_x, (pixels - np.float32(mean)) / np.float32(std), atol=1e-5)
    np.testing.assert_array_equal(test_y, [int(y) for _, y in raw])
    # Train split is augmented: zero padding shows up as the normalized value of black.
    black = -np.float32(mean) / np.float32(std)
    assert np.isclose(train_x, black, atol=1e-5).all(axis=-1).any()
    assert not np.isclose(test_x, black, atol=1e-5).all(axis=-1).any()


@pytest.mark.parametrize("split", ["train", "validation", "test"])
def test_imagenet_pipeline_under_mock_data(tmp_path, split):
    with _mock(6):
        ds = load_dataset("imagenet2012", split=split, batch_size=4, data_dir=tmp_path,
                          image_size=32)
        x, y = _collect(ds)
        if split != "train":
            x_again, _ = _collect(load_dataset("imagenet2012", split=split, batch_size=4,
                                               data_dir=tmp_path, image_size=32))
    assert ds.element_spec[0].shape.as_list() == [None, 32, 32, 3]
    assert x.shape == (6, 32, 32, 3) and x.dtype == np.float32
    assert y.dtype == np.int32 and 0 <= y.min() and y.max() < 1000
    low = -np.float32(IMAGENET_MEAN) / np.float32(IMAGENET_STD)
    high = (1 - np.float32(IMAGENET_MEAN)) / np.float32(IMAGENET_STD)
    assert np.all(x >= low - 1e-4) and np.all(x <= high + 1e-4)
    # Uniform random pixels (mean 0.5) standardized with the ImageNet statistics.
    expected_mean = (0.5 - np.float32(IMAGENET_MEAN)) / np.float32(IMAGENET_STD)
    np.testing.assert_allclose(x.mean(axis=(0, 1, 2)), expected_mean, atol=0.1)
    if split != "train":
        np.testing.assert_array_equal(x, x_again)  # eval: deterministic centre crop


# --------------------------------------------------------------------------------------------
# missing data: prompt, actionable errors
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_missing_cifar_raises_promptly_with_instructions(tmp_path, name):
    start = time.perf_counter()
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset(name, data_dir=tmp_path)
    assert time.perf_counter() - start < 10
    err = info.value
    assert isinstance(err, FileNotFoundError)
    assert err.name == name and err.data_dir == os.fspath(tmp_path)
    message = str(err)
    assert f"'{name}'" in message and os.fspath(tmp_path) in message
    assert f"tfds build {name} --data_dir {tmp_path}" in message
    assert "download_and_prepare" in message


def test_missing_imagenet_raises_promptly_with_manual_dir_instructions(tmp_path):
    start = time.perf_counter()
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("imagenet2012", split="validation", data_dir=tmp_path)
    assert time.perf_counter() - start < 10
    message = str(info.value)
    assert "'imagenet2012'" in message and "ILSVRC2012_img_val.tar" in message
    assert os.path.join(os.fspath(tmp_path), "downloads", "manual") in message
    custom = tmp_path / "my_manual"
    with pytest.raises(DatasetNotFoundError, match="my_manual"):
        load_dataset("imagenet2012", data_dir=tmp_path, manual_dir=custom)


def test_imagenet_manual_dir_is_passed_to_download_config(tmp_path, monkeypatch):
    calls = []

    def fake_download_and_prepare(self, *args, download_config=None, **kwargs):
        calls.append((self.name, download_config))  # builds nothing

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare",
                        fake_download_and_prepare)
    manual = tmp_path / "ilsvrc"
    manual.mkdir()
    # No tar file: nothing is built, the error says where to put the files.
    with pytest.raises(DatasetNotFoundError, match="ILSVRC2012"):
        data.prepare_dataset("imagenet2012", data_dir=tmp_path / "tfds", manual_dir=manual)
    assert calls == []
    (manual / "ILSVRC2012_img_val.tar").write_bytes(b"")
    data.prepare_dataset("imagenet2012", data_dir=tmp_path / "tfds", manual_dir=manual)
    assert calls[-1][0] == "imagenet2012"
    assert os.fspath(calls[-1][1].manual_dir) == os.fspath(manual)
    # load_dataset builds from the manual dir on first use, then reports what is still missing.
    calls.clear()
    with pytest.raises(DatasetNotFoundError, match="did not produce split"):
        load_dataset("imagenet2012", split="validation", data_dir=tmp_path / "tfds",
                     manual_dir=manual)
    assert len(calls) == 1 and os.fspath(calls[0][1].manual_dir) == os.fspath(manual)
