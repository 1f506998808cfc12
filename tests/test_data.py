"""Datasets: the container, digits, the IDX reader, Fashion-MNIST (real and generated), downloads.

No test touches the network: `_open_url` is replaced by a function that refuses, or serves bytes.
"""

import gzip
import hashlib
import io
import os
import struct
import urllib.error
from pathlib import Path

import numpy as np
import pytest

from taskspace.data import (
    Dataset,
    DownloadError,
    load_dataset,
    load_digits,
    load_fashion_mnist,
    read_idx,
)
from taskspace.data import download as dl
from taskspace.data import fashion_mnist as fm

REAL_FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """No network, and no data folder of the user's or the system's unless a test asks."""

    def refuse(url, timeout):
        raise urllib.error.URLError("network disabled in tests")

    monkeypatch.setattr(dl, "_open_url", refuse)
    monkeypatch.delenv(dl.DATA_ENV, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setitem(dl.SYSTEM_DIRS, "fashion-mnist", tmp_path / "no-system-dir")


def idx_bytes(array, code=0x08, ndim=None) -> bytes:
    """An IDX file written plainly: magic, big-endian dims, big-endian values."""
    array = np.asarray(array)
    dtype = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[code]
    ndim = array.ndim if ndim is None else ndim
    header = bytes([0, 0, code, ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(dtype).tobytes()


def write(path: Path, data: bytes, compress: bool = True) -> Path:
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def make_fashion(folder: Path, n_train=12, n_test=5, seed=0, compress=True):
    """Four small IDX files in the official layout; returns the arrays written."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for split, n in (("train", n_train), ("test", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n).astype(np.uint8)
        image_file, label_file = fm.FILES[split]
        name = (lambda f: f) if compress else (lambda f: f.removesuffix(".gz"))
        write(folder / name(image_file), idx_bytes(images), compress)
        write(folder / name(label_file), idx_bytes(labels), compress)
        arrays[split] = (images, labels)
    return arrays


# --- the container and the registry --------------------------------------------------------------


def test_dataset_validates_its_arrays():
    images = np.zeros((3, 2, 2), np.uint8)
    with pytest.raises(ValueError, match="disagree in length"):
        Dataset("x", "train", images, [0, 1], ["a", "b"], ["0", "1", "2"])
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\)"):
        Dataset("x", "train", images, [0, 1, 2], ["a", "b"], ["0", "1", "2"])
    with pytest.raises(ValueError, match="ids must be unique"):
        Dataset("x", "train", images, [0, 1, 1], ["a", "b"], ["0", "1", "1"])
    with pytest.raises(ValueError, match="split must be one of"):
        Dataset("x", "val", images, [0, 1, 1], ["a", "b"], ["0", "1", "2"])
    with pytest.raises(ValueError, match="class names must be unique"):
        Dataset("x", "train", images, [0, 1, 1], ["a", "a"], ["0", "1", "2"])


def test_dataset_subset_counts_and_float_images():
    images = np.arange(4 * 2 * 2, dtype=np.uint8).reshape(4, 2, 2)
    ds = Dataset(
        "x", "test", images, np.array([1, 0, 1, 1], np.int32), ["a", "b"], ["s0", "s1", "s2", "s3"]
    )
    assert ds.labels.dtype == np.int64 and len(ds) == 4 and ds.n_classes == 2
    np.testing.assert_array_equal(ds.class_counts(), [1, 3])
    sub = ds.subset([3, 1])
    np.testing.assert_array_equal(sub.images, images[[3, 1]])
    np.testing.assert_array_equal(sub.labels, [1, 0])
    assert list(sub.ids) == ["s3", "s1"] and sub.split == "test"
    f = ds.float_images([2])
    assert f.dtype == np.float32 and f.shape == (1, 2, 2)
    np.testing.assert_allclose(f, images[[2]] / 255.0, rtol=1e-6)
    assert "fashion" not in repr(ds) and "(4, 2, 2) uint8" in repr(ds)


def test_load_dataset_names_and_errors():
    with pytest.raises(ValueError, match=r"unknown dataset 'mnist'.*cifar10.*digits"):
        load_dataset("mnist")
    with pytest.raises(ValueError, match="split must be one of"):
        load_dataset("digits", "validation")
    with pytest.raises(ValueError, match="takes no root"):
        load_dataset("digits", root="/tmp")
    assert load_dataset("Digits", "test", download=False).name == "digits"


# --- digits --------------------------------------------------------------------------------------


def test_digits_fixed_stratified_split():
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    train, test = load_digits("train"), load_digits("test")
    assert (len(train), len(test)) == (1438, 359)
    assert train.images.shape == (1438, 8, 8) and train.images.dtype == np.float64
    assert set(train.ids).isdisjoint(test.ids)
    assert len(set(train.ids) | set(test.ids)) == 1797
    # Every class is split 80/20 (rounded), so the test split is stratified.
    per_class = np.bincount(bunch.target, minlength=10)
    np.testing.assert_array_equal(test.class_counts(), np.floor(0.2 * per_class + 0.5))
    # Images and labels are sklearn's, at the positions the ids name, scaled to [0, 1].
    for ds in (train, test):
        positions = np.array([int(i.split("/")[1]) for i in ds.ids])
        np.testing.assert_array_equal(ds.images, bunch.images[positions] / 16.0)
        np.testing.assert_array_equal(ds.labels, bunch.target[positions])
    assert train.images.max() == 1.0 and train.images.min() == 0.0
    assert train.class_names == [str(d) for d in range(10)]
    np.testing.assert_array_equal(load_digits("test").ids, test.ids)  # deterministic


# --- the IDX reader ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "code,dtype",
    [
        (0x08, np.uint8),
        (0x09, np.int8),
        (0x0B, np.int16),
        (0x0C, np.int32),
        (0x0D, np.float32),
        (0x0E, np.float64),
    ],
)
@pytest.mark.parametrize("compress", [True, False])
def test_idx_roundtrip_every_type(tmp_path, code, dtype, compress):
    rng = np.random.default_rng(code)
    array = (rng.normal(size=(3, 4, 5)) * 100).astype(dtype)
    path = write(tmp_path / "a.idx", idx_bytes(array, code), compress)
    out = read_idx(path)
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative and out.flags.writeable
    np.testing.assert_array_equal(out, array)


def test_idx_big_endian_on_disk(tmp_path):
    raw = bytes([0, 0, 0x0B, 1]) + struct.pack(">I", 2) + struct.pack(">hh", 258, -2)
    np.testing.assert_array_equal(read_idx(write(tmp_path / "a", raw, False)), [258, -2])


@pytest.mark.parametrize(
    "raw,message",
    [
        (b"\x01\x00\x08\x01" + struct.pack(">I", 1) + b"\x00", "not an IDX file"),
        (b"\x00\x00\x07\x01" + struct.pack(">I", 1) + b"\x00", "unknown IDX type code 0x07"),
        (b"\x00\x00\x08\x00", "declares 0 dimensions"),
        (b"\x00\x00", "truncated IDX file, the magic number"),
        (b"\x00\x00\x08\x02" + struct.pack(">I", 2), "truncated IDX file, the header"),
        (b"\x00\x00\x08\x01" + struct.pack(">I", 4) + b"\x00\x01", r"needs 4 bytes .* after 2"),
        (b"\x00\x00\x08\x01" + struct.pack(">I", 1) + b"\x00\x01", "trailing bytes"),
    ],
)
@pytest.mark.parametrize("compress", [True, False])
def test_idx_corrupt_files_name_the_file_and_problem(tmp_path, raw, message, compress):
    path = write(tmp_path / "bad-file.gz", raw, compress)
    with pytest.raises(ValueError, match=message) as info:
        read_idx(path)
    assert "bad-file.gz" in str(info.value)


def test_idx_corrupt_gzip_stream(tmp_path):
    good = gzip.compress(idx_bytes(np.arange(1000, dtype=np.uint8) % 7))
    truncated = write(tmp_path / "t.gz", good[: len(good) // 2], False)
    with pytest.raises(ValueError, match=r"t\.gz: (corrupt gzip|truncated)"):
        read_idx(truncated)
    bad_crc = bytearray(good)
    bad_crc[-8] ^= 0xFF  # the CRC32 of the trailer
    with pytest.raises(ValueError, match="corrupt gzip stream"):
        read_idx(write(tmp_path / "c.gz", bytes(bad_crc), False))


# --- Fashion-MNIST on generated files ------------------------------------------------------------


@pytest.mark.parametrize("compress", [True, False])
def test_fashion_mnist_generated_files(tmp_path, compress):
    arrays = make_fashion(tmp_path / "fm", compress=compress)
    for split in ("train", "test"):
        ds = load_fashion_mnist(split, root=tmp_path / "fm", download=False)
        images, labels = arrays[split]
        np.testing.assert_array_equal(ds.images, images)
        np.testing.assert_array_equal(ds.labels, labels)
        assert ds.labels.dtype == np.int64 and ds.name == "fashion-mnist" and ds.split == split
        assert list(ds.ids) == [f"{split}/{i}" for i in range(len(labels))]
        assert ds.class_names[0] == "T-shirt/top" and ds.class_names[9] == "Ankle boot"


def test_fashion_mnist_found_through_environment_variable(tmp_path, monkeypatch):
    arrays = make_fashion(tmp_path / "home" / "fashion-mnist")
    monkeypatch.setenv(dl.DATA_ENV, str(tmp_path / "home"))
    ds = load_dataset("fashion_mnist", "test", download=False)
    np.testing.assert_array_equal(ds.labels, arrays["test"][1])


def test_search_order(tmp_path, monkeypatch):
    monkeypatch.setenv(dl.DATA_ENV, str(tmp_path / "env"))
    monkeypatch.setitem(dl.SYSTEM_DIRS, "fashion-mnist", Path("/sys-dir"))
    assert dl.candidate_dirs("fashion-mnist") == [
        tmp_path / "env" / "fashion-mnist",
        Path("/sys-dir"),
        tmp_path / "xdg/taskspace/fashion-mnist",
    ]
    assert dl.candidate_dirs("cifar10", root=tmp_path) == [tmp_path]
    assert dl.download_dir("cifar10") == tmp_path / "env" / "cifar10"
    monkeypatch.delenv(dl.DATA_ENV)
    assert dl.download_dir("cifar10") == tmp_path / "xdg/taskspace/cifar10"


@pytest.mark.parametrize(
    "case,message",
    [
        ("shape", r"expected uint8 images of shape \(S, 28, 28\)"),
        ("count", "expected 12 uint8 labels"),
        ("label", r"label 10 outside \[0, 10\)"),
    ],
)
def test_fashion_mnist_inconsistent_files(tmp_path, case, message):
    make_fashion(tmp_path)
    images_file, labels_file = fm.FILES["train"]
    if case == "shape":
        write(tmp_path / images_file, idx_bytes(np.zeros((12, 27, 28), np.uint8)))
    elif case == "count":
        write(tmp_path / labels_file, idx_bytes(np.zeros(11, np.uint8)))
    else:
        write(tmp_path / labels_file, idx_bytes(np.full(12, 10, np.uint8)))
    with pytest.raises(ValueError, match=message):
        load_fashion_mnist("train", root=tmp_path, download=False)


def test_fashion_mnist_missing_files_explain_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        load_fashion_mnist("test", root=tmp_path, download=False)
    text = str(info.value)
    for expected in (
        "t10k-images-idx3-ubyte.gz",
        "apt-get install dataset-fashion-mnist",
        fm.URLS[0],
        str(tmp_path),
        "download=False",
        fm.MD5["t10k-images-idx3-ubyte.gz"],
    ):
        assert expected in text
    with pytest.raises(FileNotFoundError, match=r"the download failed.*network disabled"):
        load_fashion_mnist("test", root=tmp_path)


def serve(monkeypatch, files: dict[str, bytes], log: list):
    """Make `_open_url` answer the URLs ending in a name of ``files`` (and record each request)."""

    def fake_open(url, timeout):
        log.append(url)
        for name, data in files.items():
            if url.endswith("/" + name):
                return io.BytesIO(data)
        raise urllib.error.URLError(f"404 {url}")

    monkeypatch.setattr(dl, "_open_url", fake_open)


def test_fashion_mnist_download_verifies_md5_and_lands_atomically(tmp_path, monkeypatch):
    source = make_fashion(tmp_path / "server")
    payload = {f: (tmp_path / "server" / f).read_bytes() for f in fm.FILES["train"]}
    for f, data in payload.items():
        monkeypatch.setitem(fm.MD5, f, hashlib.md5(data).hexdigest())
    log = []
    serve(monkeypatch, payload, log)
    monkeypatch.setenv(dl.DATA_ENV, str(tmp_path / "home"))
    ds = load_fashion_mnist("train")
    np.testing.assert_array_equal(ds.images, source["train"][0])
    target = tmp_path / "home" / "fashion-mnist"
    assert sorted(os.listdir(target)) == sorted(fm.FILES["train"])  # no temporary files left
    assert log == [fm.URLS[0] + f for f in fm.FILES["train"]]
    load_fashion_mnist("train")  # now found on disk: no second download
    assert len(log) == 2


def test_download_tries_mirrors_and_rejects_bad_checksums(tmp_path, monkeypatch):
    data = b"payload"
    log = []
    serve(monkeypatch, {"f.bin": data}, log)
    dest = tmp_path / "d" / "f.bin"
    with pytest.raises(DownloadError, match=r"md5 .* differs from the expected 0+"):
        dl.fetch(["http://a/f.bin"], dest, "0" * 32)
    assert not dest.exists() and os.listdir(dest.parent) == []
    good = hashlib.md5(data).hexdigest()
    out = dl.fetch(["http://a/missing", "http://b/f.bin"], dest, good)
    assert out.read_bytes() == data and log[-2:] == ["http://a/missing", "http://b/f.bin"]
    assert os.listdir(dest.parent) == ["f.bin"]


def test_interrupted_download_leaves_nothing(tmp_path, monkeypatch):
    class Broken(io.BytesIO):
        def read(self, n=-1):
            if self.tell() > 0:
                raise ConnectionResetError("connection reset")
            return super().read(4)

    monkeypatch.setattr(dl, "_open_url", lambda url, timeout: Broken(b"0123456789"))
    with pytest.raises(DownloadError, match="connection reset"):
        dl.fetch("http://a/f", tmp_path / "f", "0" * 32)
    assert os.listdir(tmp_path) == []


# --- the real Fashion-MNIST (Debian's dataset-fashion-mnist) -------------------------------------


@pytest.fixture(scope="module")
def real_fashion():
    if not (REAL_FASHION / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip(
            f"Fashion-MNIST is not installed in {REAL_FASHION} "
            "(apt-get install dataset-fashion-mnist)"
        )
    return (
        load_fashion_mnist("train", root=REAL_FASHION, download=False),
        load_fashion_mnist("test", root=REAL_FASHION, download=False),
    )


def test_real_fashion_mnist(real_fashion):
    train, test = real_fashion
    assert train.images.shape == (60000, 28, 28) and train.images.dtype == np.uint8
    assert test.images.shape == (10000, 28, 28) and test.labels.shape == (10000,)
    np.testing.assert_array_equal(train.class_counts(), np.full(10, 6000))
    np.testing.assert_array_equal(test.class_counts(), np.full(10, 1000))
    # Published facts: the first labels of each split, and the pixel mean/std of the train split.
    np.testing.assert_array_equal(train.labels[:5], [9, 0, 0, 3, 0])
    np.testing.assert_array_equal(test.labels[:5], [9, 2, 1, 1, 6])
    n = train.images.size  # exact integer moments (fast, unlike a float copy of 47 M pixels)
    mean = train.images.sum(dtype=np.uint64) / n / 255
    mean_square = np.square(train.images, dtype=np.uint16).sum(dtype=np.uint64) / n / 255**2
    assert (mean, np.sqrt(mean_square - mean**2)) == pytest.approx((0.2860, 0.3530), abs=1e-4)
    assert train.class_names == fm.CLASS_NAMES and test.ids[-1] == "test/9999"


def test_real_fashion_mnist_found_in_system_folder(real_fashion, monkeypatch):
    monkeypatch.setitem(dl.SYSTEM_DIRS, "fashion-mnist", REAL_FASHION)
    test = load_dataset("fashion-mnist", "test", download=False)
    np.testing.assert_array_equal(test.labels, real_fashion[1].labels)
