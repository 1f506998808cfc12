"""CIFAR-10 in its real pickle/tar.gz format and ImageNet-style folders, on files tests write."""

import hashlib
import io
import os
import pickle
import struct
import tarfile
import urllib.error
from pathlib import Path

import numpy as np
import pytest

from taskspace.data import ImageFiles, cifar, load_cifar10, load_dataset, load_imagefolder
from taskspace.data import download as dl


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    """No network, and no data folder of the user's unless a test asks."""

    def refuse(url, timeout):
        raise urllib.error.URLError("network disabled in tests")

    monkeypatch.setattr(dl, "_open_url", refuse)
    monkeypatch.delenv(dl.DATA_ENV, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))


# --- CIFAR-10 ------------------------------------------------------------------------------------

CIFAR_NAMES = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]


class Py2Pickler(pickle._Pickler):
    """Writes what Python 2's cPickle wrote for the official files: str as BINSTRING, and
    NumPy arrays through ``numpy.core.multiarray._reconstruct``."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_py2_str(self, obj):
        data = obj if isinstance(obj, bytes) else obj.encode("latin1")
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str
    dispatch[str] = save_py2_str

    def save_global(self, obj, name=None):
        if getattr(obj, "__name__", "") == "_reconstruct":
            self.write(pickle.GLOBAL + b"numpy.core.multiarray\n_reconstruct\n")
            self.memoize(obj)
            return
        super().save_global(obj, name)


def dump(path: Path, obj, py2: bool):
    buffer = io.BytesIO()
    if py2:
        Py2Pickler(buffer, protocol=2).dump(obj)
    else:
        pickle.dump(obj, buffer, protocol=2)
    path.write_bytes(buffer.getvalue())


def make_cifar(folder: Path, n_per_batch=3, n_test=4, py2=True, seed=0):
    """A cifar-10-batches-py folder in the official format; returns {split: (data, labels)}."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    written = {"train": ([], []), "test": ([], [])}
    for split, batches in cifar.BATCHES.items():
        for name in batches:
            n = n_per_batch if split == "train" else n_test
            data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
            labels = [int(v) for v in rng.integers(0, 10, size=n)]
            dump(
                folder / name,
                {
                    b"batch_label": name.encode(),
                    b"labels": labels,
                    b"data": data,
                    b"filenames": [b"x.png"] * n,
                },
                py2,
            )
            written[split][0].append(data)
            written[split][1].extend(labels)
    dump(
        folder / "batches.meta",
        {
            b"num_cases_per_batch": n_per_batch,
            b"label_names": [c.encode() for c in CIFAR_NAMES],
            b"num_vis": 3072,
        },
        py2,
    )
    return {s: (np.concatenate(d), np.array(y)) for s, (d, y) in written.items()}


def make_archive(path: Path, source: Path, extra=()) -> Path:
    """tar.gz with ``cifar-10-batches-py/<files>``, a readme, and any ``extra`` TarInfos."""
    with tarfile.open(path, "w:gz") as tar:
        for f in sorted(source.iterdir()):
            tar.add(f, arcname=f"cifar-10-batches-py/{f.name}")
        readme = b"<html></html>"
        info = tarfile.TarInfo("cifar-10-batches-py/readme.html")
        info.size = len(readme)
        tar.addfile(info, io.BytesIO(readme))
        for info, data in extra:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


@pytest.mark.parametrize("py2", [True, False])
def test_cifar10_real_format(tmp_path, py2):
    written = make_cifar(tmp_path / "cifar-10-batches-py", py2=py2)
    for split, n in (("train", 15), ("test", 4)):
        ds = load_cifar10(split, root=tmp_path, download=False)
        data, labels = written[split]
        assert ds.images.shape == (n, 32, 32, 3) and ds.images.dtype == np.uint8
        np.testing.assert_array_equal(ds.labels, labels)
        # Row layout: 1024 red, 1024 green, 1024 blue values, each row-major over 32×32.
        for s, (r, c, k) in enumerate([(0, 0, 0), (5, 17, 1), (31, 31, 2), (12, 3, 1)][:n]):
            assert ds.images[s, r, c, k] == data[s, k * 1024 + r * 32 + c]
        assert ds.class_names == CIFAR_NAMES and ds.ids[-1] == f"{split}/{n - 1}"
    # The folder itself may be given as root; the registry finds it too.
    direct = load_dataset("cifar-10", "test", root=tmp_path / "cifar-10-batches-py")
    np.testing.assert_array_equal(direct.images, load_cifar10("test", root=tmp_path).images)


def test_cifar10_archive_md5_checked_then_extracted(tmp_path, monkeypatch):
    make_cifar(tmp_path / "src")
    (tmp_path / "data").mkdir()
    archive = make_archive(tmp_path / "data" / cifar.ARCHIVE, tmp_path / "src")
    with pytest.raises(
        ValueError, match=r"md5 [0-9a-f]{32} differs from the official " + cifar.ARCHIVE_MD5
    ):
        load_cifar10("test", root=tmp_path / "data")
    assert not (tmp_path / "data" / cifar.FOLDER).exists()
    monkeypatch.setattr(cifar, "ARCHIVE_MD5", hashlib.md5(archive.read_bytes()).hexdigest())
    ds = load_cifar10("train", root=tmp_path / "data")
    assert len(ds) == 15
    extracted = sorted(os.listdir(tmp_path / "data" / cifar.FOLDER))
    assert extracted == sorted(cifar.MEMBERS)  # only the known members, no temporary files


def test_cifar10_extraction_cannot_escape_the_folder(tmp_path):
    make_cifar(tmp_path / "src")
    evil = []
    for name in ("cifar-10-batches-py/../../escaped", "/tmp/absolute-escape", "../escaped2"):
        info = tarfile.TarInfo(name)
        info.size = 4
        evil.append((info, b"evil"))
    archive = make_archive(tmp_path / "a.tar.gz", tmp_path / "src", evil)
    dest = tmp_path / "deep" / "dest"
    folder = cifar.extract_archive(archive, dest, md5=hashlib.md5(archive.read_bytes()).hexdigest())
    assert sorted(os.listdir(folder)) == sorted(cifar.MEMBERS)
    assert not (tmp_path / "deep" / "escaped").exists() and not (tmp_path / "escaped2").exists()
    assert not Path("/tmp/absolute-escape").exists()


def test_cifar10_archive_with_a_link_member_is_refused(tmp_path):
    source = tmp_path / "src"
    make_cifar(source)
    (source / "batches.meta").unlink()
    link = tarfile.TarInfo("cifar-10-batches-py/batches.meta")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    archive = make_archive(tmp_path / "a.tar.gz", source, [(link, None)])
    with pytest.raises(ValueError, match=r"batches\.meta is not a regular file"):
        cifar.extract_archive(archive, tmp_path, md5=hashlib.md5(archive.read_bytes()).hexdigest())


def test_cifar10_corrupt_archive(tmp_path):
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(b"\x1f\x8b" + os.urandom(200))
    with pytest.raises(ValueError, match="corrupt archive"):
        cifar.extract_archive(archive, tmp_path, md5=hashlib.md5(archive.read_bytes()).hexdigest())
    make_cifar(tmp_path / "src")
    partial = tmp_path / "p.tar.gz"
    with tarfile.open(partial, "w:gz") as tar:
        tar.add(tmp_path / "src" / "test_batch", arcname="cifar-10-batches-py/test_batch")
    with pytest.raises(ValueError, match=r"lacks \['cifar-10-batches-py/data_batch_1'"):
        cifar.extract_archive(
            partial, tmp_path / "out", md5=hashlib.md5(partial.read_bytes()).hexdigest()
        )


def test_cifar10_download(tmp_path, monkeypatch):
    make_cifar(tmp_path / "src")
    payload = make_archive(tmp_path / "served.tar.gz", tmp_path / "src").read_bytes()
    monkeypatch.setattr(cifar, "ARCHIVE_MD5", hashlib.md5(payload).hexdigest())
    requested = []

    def fake_open(url, timeout):
        requested.append(url)
        return io.BytesIO(payload)

    monkeypatch.setattr(dl, "_open_url", fake_open)
    monkeypatch.setenv(dl.DATA_ENV, str(tmp_path / "home"))
    assert len(load_cifar10("test")) == 4
    assert requested == [cifar.URL]
    assert (tmp_path / "home" / "cifar10" / cifar.ARCHIVE).is_file()
    assert len(load_cifar10("train")) == 15 and requested == [cifar.URL]


def test_cifar10_missing_explains_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        load_cifar10("train", root=tmp_path, download=False)
    for expected in (cifar.URL, cifar.ARCHIVE_MD5, str(tmp_path), "cifar-10-batches-py"):
        assert expected in str(info.value)
    with pytest.raises(FileNotFoundError, match=r"download failed.*network disabled"):
        load_cifar10("train", root=tmp_path)


def test_cifar10_bad_files(tmp_path):
    folder = tmp_path / cifar.FOLDER
    make_cifar(folder)
    (folder / "data_batch_3").write_bytes((folder / "data_batch_3").read_bytes()[:100])
    with pytest.raises(ValueError, match="data_batch_3: not a readable CIFAR pickle"):
        load_cifar10("train", root=tmp_path)
    dump(folder / "test_batch", {b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, True)
    with pytest.raises(ValueError, match=r"'data' must be a uint8 array of shape \(n, 3072\)"):
        load_cifar10("test", root=tmp_path)
    dump(folder / "test_batch", {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]}, True)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 10\)"):
        load_cifar10("test", root=tmp_path)
    (folder / "test_batch").unlink()
    with pytest.raises(FileNotFoundError, match="test_batch is missing"):
        load_cifar10("test", root=tmp_path)


def test_cifar10_pickles_cannot_run_code(tmp_path):
    marker = tmp_path / "code-ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    folder = tmp_path / cifar.FOLDER
    make_cifar(folder)
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": Payload(), b"labels": []}))
    with pytest.raises(ValueError, match=r"global (posix|os)\.system is not allowed"):
        load_cifar10("test", root=tmp_path)
    assert not marker.exists()


# --- ImageNet-style folders ----------------------------------------------------------------------

RED, GREEN, BLUE = (220, 20, 20), (20, 200, 30), (10, 20, 230)


def make_tree(root: Path):
    """train/ and val/ with two wnids, JPEGs and PNGs of several sizes and modes."""
    from PIL import Image

    def save(path, image):
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path)

    t = root / "train"
    save(t / "n01443537" / "b_1.JPEG", Image.new("RGB", (40, 30), RED))
    save(t / "n01443537" / "a_0.jpg", Image.new("RGB", (300, 200), GREEN))  # JPEG draft path
    wide = Image.new("RGB", (90, 30), RED)  # red | green | blue thirds: the crop keeps green
    wide.paste(GREEN, (30, 0, 60, 30))
    wide.paste(BLUE, (60, 0, 90, 30))
    save(t / "n01443537" / "c_wide.png", wide)
    save(t / "n01440764" / "x.png", Image.new("RGBA", (20, 20), (*BLUE, 255)))
    save(t / "n01440764" / "y.png", Image.new("L", (16, 24), 128))
    (t / "n01440764" / "notes.txt").write_text("not an image")
    (t / "n01440764" / ".hidden.png").write_bytes(b"ignored")
    save(root / "val" / "n01443537" / "v.JPEG", Image.new("RGB", (64, 64), BLUE))
    save(root / "val" / "n01440764" / "w.png", Image.new("RGB", (8, 8), GREEN))


def test_imagefolder_layout_labels_and_decoding(tmp_path):
    make_tree(tmp_path)
    ds = load_imagefolder("train", root=tmp_path, size=12)
    assert ds.class_names == ["n01440764", "n01443537"]  # sorted wnids
    assert list(ds.ids) == [
        "train/n01440764/x.png",
        "train/n01440764/y.png",
        "train/n01443537/a_0.jpg",
        "train/n01443537/b_1.JPEG",
        "train/n01443537/c_wide.png",
    ]
    np.testing.assert_array_equal(ds.labels, [0, 0, 1, 1, 1])
    assert isinstance(ds.images, ImageFiles) and ds.images.shape == (5, 12, 12, 3)
    images = np.asarray(ds.images)
    assert images.shape == (5, 12, 12, 3) and images.dtype == np.uint8
    expected = [BLUE, (128, 128, 128), GREEN, RED, GREEN]
    for image, color in zip(images, expected, strict=True):
        np.testing.assert_allclose(image.reshape(-1, 3).mean(0), color, atol=4)
    # The wide image is center-cropped, not squashed: green fills it (the resampling filter only
    # blends the outermost columns with the red and blue beyond the crop).
    assert np.abs(images[4][:, 1:-1].astype(int) - GREEN).max() <= 2
    assert images[4][..., 1].min() > 150
    test = load_dataset("imagefolder", "test", root=tmp_path, size=12)
    np.testing.assert_array_equal(test.labels, [0, 1])
    assert test.class_names == ds.class_names and test.ids[0] == "val/n01440764/w.png"


def test_imagefolder_lazy_indexing_matches_eager(tmp_path):
    make_tree(tmp_path)
    lazy = load_imagefolder("train", root=tmp_path, size=8)
    eager = load_imagefolder("train", root=tmp_path, size=8, lazy=False)
    assert isinstance(eager.images, np.ndarray)
    full = eager.images
    np.testing.assert_array_equal(lazy.images[3], full[3])
    np.testing.assert_array_equal(lazy.images[[4, 0]], full[[4, 0]])
    np.testing.assert_array_equal(lazy.images[1:4], full[1:4])
    np.testing.assert_array_equal(lazy.images[lazy.labels == 1], full[eager.labels == 1])
    np.testing.assert_array_equal(lazy.images[[2, 3], :, 0], full[[2, 3], :, 0])
    np.testing.assert_array_equal(lazy.images[2, 0], full[2, 0])
    sub = lazy.subset([4, 1])
    assert isinstance(sub.images, ImageFiles) and list(sub.ids) == [lazy.ids[4], lazy.ids[1]]
    np.testing.assert_array_equal(np.asarray(sub.images), full[[4, 1]])
    np.testing.assert_allclose(lazy.float_images([0]), full[[0]] / 255.0, rtol=1e-6)


def test_imagefolder_max_per_class_and_class_subset(tmp_path):
    make_tree(tmp_path)
    ds = load_imagefolder("train", root=tmp_path, max_per_class=1)
    assert list(ds.ids) == ["train/n01440764/x.png", "train/n01443537/a_0.jpg"]
    assert ds.images.shape == (2, 64, 64, 3)  # default size
    one = load_imagefolder("test", root=tmp_path, classes=["n01443537"])
    assert one.class_names == ["n01443537"] and list(one.labels) == [0]
    with pytest.raises(ValueError, match=r"unknown classes \['n99999999'\].*n01440764"):
        load_imagefolder("train", root=tmp_path, classes=["n01443537", "n99999999"])
    with pytest.raises(ValueError, match="max_per_class must be a positive int"):
        load_imagefolder("train", root=tmp_path, max_per_class=0)


def test_imagefolder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no image folder found"):
        load_imagefolder("train", root=tmp_path)
    make_tree(tmp_path)
    (tmp_path / "val" / "n02000000").mkdir()
    with pytest.raises(ValueError, match=r"class folders that .*train lacks: \['n02000000'\]"):
        load_imagefolder("test", root=tmp_path)
    (tmp_path / "val" / "n02000000").rmdir()
    bad = tmp_path / "train" / "n01440764" / "z.jpg"
    bad.write_bytes(b"\xff\xd8 truncated jpeg")
    ds = load_imagefolder("train", root=tmp_path)  # listing is lazy: nothing decoded yet
    with pytest.raises(ValueError, match=r"z\.jpg: cannot decode image"):
        ds.images[2]
    only_train = tmp_path / "other"
    (only_train / "train" / "n1").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="no val or test/ folder"):
        load_imagefolder("test", root=only_train)
