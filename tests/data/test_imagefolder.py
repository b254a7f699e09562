"""Image folders against references we did not write: torchvision's ImageFolder (classes, order,
pixels after Resize/CenterCrop), Pillow's own decoding of each file, and the dataset arrays a folder
was written from (byte for byte). Every file is a real PNG/JPEG/BMP/TIFF written by Pillow."""

import os

import numpy as np
import pytest
from PIL import Image, ImageOps

from cnnlab.data import load_dataset
from cnnlab.data import export_folder, folder_decode
from cnnlab.data.export_folder import class_folder_names
from cnnlab.data.folder_decode import decode_files
from cnnlab.data.images import decode_image
from cnnlab.data.imagefolder import IMG_EXTENSIONS, write_imagefolder
from cnnlab.data.workers import process_map
from cnnlab.errors import CnnlabError


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    """Every test decodes into a cache of its own."""
    monkeypatch.setenv("CNNLAB_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "imagefolder"


def pixels(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def write_classes(folder, counts, hw=(8, 8), channels=1, ext=".png", seed=0):
    """``counts[name]`` images of noise in ``folder/name/``, named 0.png, 1.png, ..."""
    for k, (name, count) in enumerate(counts.items()):
        (folder / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            array = pixels((*hw, channels) if channels == 3 else hw, seed=seed + 100 * k + i)
            Image.fromarray(array).save(folder / name / f"{i}{ext}")
    return folder


def load(root, **options):
    return load_dataset("imagefolder", root, **options)


def message(root, **options):
    with pytest.raises(CnnlabError) as err:
        load(root, **options)
    assert "\n" not in str(err.value)
    return str(err.value)


def test_extensions_are_torchvisions():
    from torchvision.datasets.folder import IMG_EXTENSIONS as TORCHVISION

    assert IMG_EXTENSIONS == TORCHVISION


# --- round trip: write_imagefolder, then read back byte for byte ---------------------------------

@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 6, 5)])
def test_a_written_folder_reads_back_byte_for_byte(tmp_path, shape):
    data = load_dataset("synthetic", shape=shape, num_classes=3, train_size=40, test_size=15, seed=1)
    written = write_imagefolder(data, tmp_path / "out")
    back = load(tmp_path / "out")
    for part in ("train", "test"):
        labels = getattr(data, f"{part}_labels")
        order = np.argsort(labels, kind="stable")  # grouped by class, in the original order within each
        assert np.array_equal(getattr(back, f"{part}_labels"), labels[order])
        assert np.array_equal(getattr(back, f"{part}_images"), getattr(data, f"{part}_images")[order])
    assert back.classes == ("0_class0", "1_class1", "2_class2") and back.image_shape == shape
    files = list((tmp_path / "out").rglob("*.png"))
    assert written.files == {"train": 40, "test": 15} and written.total == len(files) == 55
    assert written.bytes == sum(p.stat().st_size for p in files)
    with Image.open(files[0]) as image:
        assert image.mode == ("L" if shape[0] == 1 else "RGB")


def test_workers_write_and_decode_as_one_process_does_after_torch_ran(tmp_path, monkeypatch):
    import torch

    torch.ones(64, 64) @ torch.ones(64, 64)  # torch's thread pools now exist in this process
    data = load_dataset("synthetic", shape=(3, 8, 8), num_classes=4, train_size=300, test_size=40, seed=2)
    for module, chunk in ((folder_decode, "CHUNK_FILES"), (export_folder, "WRITE_CHUNK")):
        monkeypatch.setattr(module, chunk, 64)  # several chunks, so two workers share them
        monkeypatch.setattr(module, "MIN_FILES_FOR_WORKERS", 100)
    pools = []
    for module in (folder_decode, export_folder):
        monkeypatch.setattr(module, "process_map", lambda *args, real=module.process_map: pools.append(args[2])
                            or real(*args))
    write_imagefolder(data, tmp_path / "out", workers=2)
    paths = sorted(str(p) for p in (tmp_path / "out").rglob("*.png"))  # test/ before train/, each by class
    pooled, alone = decode_files(paths, workers=2), decode_files(paths, workers=1)
    assert pools == [2, 2]
    expected = np.concatenate([data.test_images[np.argsort(data.test_labels, kind="stable")],
                               data.train_images[np.argsort(data.train_labels, kind="stable")]])
    assert np.array_equal(pooled.images, expected) and np.array_equal(alone.images, expected)


def _slow_square(x):
    import time

    time.sleep(0.02 * (x % 3))  # answers arrive out of order
    return x * x


def _dies_on_seven(x):
    if x == 7:
        os._exit(9)  # as the out-of-memory killer would end it: no answer, no exception
    return x


def _fails_on_three(x):
    if x == 3:
        raise ZeroDivisionError("a bug in a worker")
    return x


def test_workers_answer_in_task_order_and_a_death_is_an_error_not_a_hang():
    assert list(process_map(_slow_square, list(range(20)), 2)) == [x * x for x in range(20)]
    with pytest.raises(CnnlabError, match=r"^a worker process died \(exit code 9; -9 is usually the out-of-memory "
                                          r"killer\) with its work unfinished; use fewer cores or smaller images$"):
        list(process_map(_dies_on_seven, list(range(20)), 2))
    with pytest.raises(RuntimeError, match="ZeroDivisionError: a bug in a worker"):
        list(process_map(_fails_on_three, list(range(8)), 2))


def test_class_folders_sort_in_label_order_and_are_file_names():
    names = class_folder_names(("T-shirt/top", "Ankle boot", "a:b*c", "..", *[f"c{k}" for k in range(8)]))
    assert names[:4] == ["00_T-shirt_top", "01_Ankle_boot", "02_a_b_c", "03"]
    assert sorted(names) == names and len(names) == 12
    assert class_folder_names(("x", "y")) == ["0_x", "1_y"]


def test_the_writer_refuses_a_non_empty_folder_and_an_empty_class(tmp_path):
    data = load_dataset("synthetic", shape=(1, 4, 4), num_classes=3, train_size=30, test_size=9)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("x")
    with pytest.raises(CnnlabError, match=rf"^{tmp_path / 'out'} is not empty; give a new or empty folder"):
        write_imagefolder(data, tmp_path / "out")
    data = load_dataset("synthetic", shape=(1, 4, 4), num_classes=3, train_size=30, test_size=1)
    with pytest.raises(CnnlabError, match=r"^dataset 'synthetic' has no test image of class 'class\d'; an image "
                                          r"folder needs every class in every part"):
        write_imagefolder(data, tmp_path / "new")
    assert not (tmp_path / "new").exists()


def test_an_export_stopped_half_way_leaves_no_partial_folder_and_reruns(tmp_path, monkeypatch):
    data = load_dataset("synthetic", shape=(1, 4, 4), num_classes=3, train_size=30, test_size=9)
    monkeypatch.setattr(export_folder, "WRITE_CHUNK", 10)
    real, calls = export_folder._write_task, []

    def interrupted(task):
        calls.append(task)
        if len(calls) == 3:
            raise KeyboardInterrupt  # Ctrl-C after two chunks of files
        return real(task)

    monkeypatch.setattr(export_folder, "_write_task", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_imagefolder(data, tmp_path / "out", workers=1)
    assert not (tmp_path / "out").exists() and len(list((tmp_path / ".out.partial").rglob("*.png"))) == 20
    monkeypatch.setattr(export_folder, "_write_task", real)
    written = write_imagefolder(data, tmp_path / "out", workers=1)  # the same command again
    assert written.total == 39 == len(list((tmp_path / "out").rglob("*.png")))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # the leftover sibling is gone
    (tmp_path / "empty").mkdir()
    assert write_imagefolder(data, tmp_path / "empty", workers=1).total == 39  # an empty folder is taken too


# --- decoding against torchvision's ImageFolder and Pillow -------------------------------------

def mixed_folder(root):
    """train/ and test/ with classes a, b, c: gray and colour files of several sizes and formats,
    nested folders, an upper-case extension and a file that is not an image."""
    for part, seed in (("train", 0), ("test", 50)):
        write_classes(root / part, {"a": 2, "b": 2, "c": 1}, hw=(9, 13), channels=1, seed=seed)
        write_classes(root / part, {"b": 2, "c": 2}, hw=(15, 11), channels=3, ext=".JPEG", seed=seed + 1)
        write_classes(root / part, {"c": 1}, hw=(12, 12), channels=3, ext=".bmp", seed=seed + 2)
        # nested folders in torchvision's order, sorted by path: a/n, a/n-b, a/n/inner ('-' sorts before '/')
        write_classes(root / part / "a", {"n": 2, "n-b": 1}, hw=(20, 10), channels=3, ext=".tif", seed=seed + 3)
        write_classes(root / part / "a" / "n", {"inner": 1}, hw=(10, 10), channels=1, ext=".pgm", seed=seed + 4)
        (root / part / "a" / "notes.txt").write_text("not an image")
    return root


@pytest.mark.parametrize("resize, size, channels", [("resize", 12, 3), ("stretch", (10, 14), 1), ("resize", 7, None)])
def test_decoding_equals_torchvisions_image_folder(tmp_path, resize, size, channels):
    from torchvision.datasets import ImageFolder
    from torchvision.transforms import CenterCrop, Compose, PILToTensor, Resize

    root = mixed_folder(tmp_path / "data")
    hw = (size, size) if isinstance(size, int) else size
    data = load(root, image_size=hw, channels=channels, resize=resize)
    steps = [Resize(size), CenterCrop(size)] if resize == "resize" else [Resize(size)]
    mode = "L" if channels == 1 else "RGB"  # None: the folder has colour files, so RGB
    for part in ("train", "test"):
        reference = ImageFolder(root / part, transform=Compose([*steps, PILToTensor()]),
                                loader=lambda path: Image.open(path).convert(mode))
        assert reference.classes == list(data.classes) == ["a", "b", "c"]
        assert np.array_equal(getattr(data, f"{part}_labels"), reference.targets)
        assert np.array_equal(getattr(data, f"{part}_images"), np.stack([x.numpy() for x, _ in reference]))


def jpeg_rotated(path):
    """A 6x10 JPEG whose EXIF says: rotate 90 degrees clockwise to view (orientation 6)."""
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(pixels((6, 10, 3), seed=5)).save(path, exif=exif, quality=95)


def special_file(kind, path):
    """One file of each kind Pillow decodes specially; returns its pixels as Pillow gives them."""
    if kind == "palette":
        Image.fromarray(pixels((6, 7, 3), seed=1)).quantize(16).save(path)
        return np.asarray(Image.open(path).convert("RGB"))
    if kind == "rgba":  # alpha 0, 128 and 255 over black
        array = pixels((6, 7, 4), seed=2)
        array[..., 3] = np.array([0, 128, 255] * 14)[:42].reshape(6, 7)
        Image.fromarray(array, "RGBA").save(path)
        black = Image.new("RGB", (7, 6), (0, 0, 0))
        black.paste(Image.open(path).convert("RGB"), mask=Image.open(path).getchannel("A"))
        return np.asarray(black)
    if kind == "cmyk":
        Image.fromarray(pixels((6, 7, 4), seed=3), "CMYK").save(path)
        return np.asarray(Image.open(path).convert("RGB"))
    if kind == "16-bit":  # scaled by its own maximum, so a 12-bit scan is not clipped to white
        array = (np.arange(42, dtype=np.uint16) * 97).reshape(6, 7)
        Image.fromarray(array).save(path)
        with Image.open(path) as image:
            assert image.mode.startswith("I")
        return np.round(array * 255.0 / array.max()).astype(np.uint8)[:, :, None]
    jpeg_rotated(path)
    return np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))


@pytest.mark.parametrize("kind, ext, gray", [("palette", ".png", False), ("rgba", ".png", False),
                                             ("cmyk", ".tif", False), ("16-bit", ".png", True),
                                             ("exif", ".jpg", False)])
def test_special_files_decode_as_pillow_gives_them(tmp_path, kind, ext, gray):
    expected = special_file(kind, tmp_path / f"x{ext}")
    got, is_gray = decode_image(tmp_path / f"x{ext}", None)
    assert is_gray == gray and got.shape == expected.shape
    assert np.abs(got.astype(int) - expected).max() <= (1 if kind == "rgba" else 0)  # paste rounds its own way
    if kind == "exif":
        assert got.shape[:2] == (10, 6)  # stored 6 high, 10 wide: shown upright, 10 high


def test_a_folder_of_special_files_loads_in_rgb_at_one_size(tmp_path):
    kinds = [("palette", ".png"), ("rgba", ".png"), ("cmyk", ".tif"), ("16-bit", ".png"), ("exif", ".jpg")]
    for part in ("train", "test"):
        for k, (kind, ext) in enumerate(kinds):
            (tmp_path / "data" / part / f"{k}_{kind}").mkdir(parents=True)
            special_file(kind, tmp_path / "data" / part / f"{k}_{kind}" / f"x{ext}")
    data = load(tmp_path / "data", image_size=(5, 5))
    assert data.image_shape == (3, 5, 5) and list(data.train_labels) == [0, 1, 2, 3, 4]


# --- the cache ---------------------------------------------------------------------------------

def test_the_second_load_reads_the_cache_until_a_file_changes(tmp_path, cache):
    root = write_classes(tmp_path / "data", {"a": 5, "b": 5})
    first, second = load(root), load(root)
    assert (first.notes["cache_hit"], second.notes["cache_hit"]) == (False, True)
    assert first.notes["files_decoded"] == 10 and second.notes["files_decoded"] == 0
    assert second.notes["cache"] == first.notes["cache"] and str(cache) in first.notes["cache"]
    for part in ("train_images", "train_labels", "test_images", "test_labels"):
        assert np.array_equal(getattr(first, part), getattr(second, part))
    stat = (root / "a" / "0.png").stat()
    os.utime(root / "a" / "0.png", ns=(stat.st_atime_ns, stat.st_mtime_ns + 1000))  # touched, same bytes
    assert not load(root).notes["cache_hit"] and load(root).notes["cache_hit"]
    Image.fromarray(pixels((8, 8), seed=99)).save(root / "b" / "new.png")  # added
    added = load(root)
    assert not added.notes["cache_hit"] and added.notes["image_files"] == 11
    (root / "a" / "1.png").unlink()  # removed
    assert not load(root).notes["cache_hit"] and load(root).notes["image_files"] == 10
    assert len(list(cache.glob("*.npy"))) == 2  # the images and index of the newest contents only


def test_other_settings_have_a_cache_of_their_own(tmp_path, cache):
    root = write_classes(tmp_path / "data", {"a": 4, "b": 4})
    assert load(root).image_shape == (1, 8, 8) and load(root, image_size=(4, 4)).image_shape == (1, 4, 4)
    assert load(root).notes["cache_hit"] and load(root, image_size=(4, 4)).notes["cache_hit"]
    assert not load(root, channels=3).notes["cache_hit"]
    assert len(list(cache.glob("*.json"))) == 3


@pytest.mark.parametrize("damage", ["truncate images", "garbage json", "delete index"])
def test_a_damaged_cache_is_reported_and_rebuilt(tmp_path, cache, capsys, damage):
    root = write_classes(tmp_path / "data", {"a": 4, "b": 4})
    first = load(root)
    images = next(p for p in cache.glob("*.npy") if not p.name.endswith(".index.npy"))
    if damage == "truncate images":
        images.write_bytes(images.read_bytes()[:150])
    elif damage == "garbage json":
        next(cache.glob("*.json")).write_text("{not json")
    else:
        next(cache.glob("*.index.npy")).unlink()
    capsys.readouterr()
    rebuilt = load(root)
    warning = capsys.readouterr().err.strip()
    assert warning.startswith(f"warning: the image-folder cache {next(cache.glob('*.json'))} cannot be read (")
    assert warning.endswith("); decoding again") and "\n" not in warning
    assert not rebuilt.notes["cache_hit"] and np.array_equal(rebuilt.train_images, first.train_images)
    assert load(root).notes["cache_hit"]


def test_what_a_killed_write_left_is_removed_once_old(tmp_path, cache):
    root = write_classes(tmp_path / "data", {"a": 4, "b": 4})
    load(root)
    stem = next(cache.glob("*.json")).stem
    old, fresh = cache / f".{stem}-0123.npy.ab12.tmp", cache / f".{stem}.json.cd34.tmp"
    for stray in (old, fresh):
        stray.write_bytes(b"half a file")
    os.utime(old, (0, 0))
    (root / "a" / "0.png").unlink()  # a miss: the cache is written again
    load(root)
    assert not old.exists() and fresh.exists()  # a fresh one may be another process's write in progress


# --- unreadable files --------------------------------------------------------------------------

def bad_folder(root):
    write_classes(root, {"a": 4, "b": 4})
    good = (root / "a" / "0.png").read_bytes()
    (root / "a" / "truncated.png").write_bytes(good[: len(good) // 2])
    (root / "b" / "empty.png").write_bytes(b"")
    (root / "b" / "text.jpg").write_text("a text file, named as a JPEG\n")
    return root


def test_bad_files_are_listed_then_stop_the_load(tmp_path, capsys):
    root = bad_folder(tmp_path / "data")
    for attempt in range(2):  # decoded, then from the cache: the same report
        assert message(root) == (f"3 of 11 image files in {root} cannot be read (listed above); fix or remove them, "
                                 "or set data.skip_bad_files: true")
        assert capsys.readouterr().err.splitlines() == [
            f"{root / 'a' / 'truncated.png'}: image file is truncated",
            f"{root / 'b' / 'empty.png'}: empty file (0 bytes)",
            f"{root / 'b' / 'text.jpg'}: not an image file that Pillow recognises",
            f"3 of 11 image files in {root} cannot be read",
        ]


def test_skip_bad_files_skips_and_counts_them(tmp_path, capsys):
    root = bad_folder(tmp_path / "data")
    data = load(root, skip_bad_files=True)
    assert data.notes["bad_files_skipped"] == 3 and data.notes["image_files"] == 11
    assert len(data.train_labels) + len(data.test_labels) == 8
    assert capsys.readouterr().err.splitlines()[-1] == (f"3 of 11 image files in {root} cannot be read, "
                                                        "skipped (data.skip_bad_files)")
    assert load(root, skip_bad_files=True).notes["cache_hit"]


# --- layouts -----------------------------------------------------------------------------------

def test_class_folders_hold_out_a_fixed_stratified_test_part(tmp_path):
    root = write_classes(tmp_path / "data", {"cat": 10, "dog": 20})
    data = load(root, test_fraction=0.3)
    assert data.classes == ("cat", "dog") and data.val_images is None
    assert np.bincount(data.test_labels).tolist() == [3, 6] and np.bincount(data.train_labels).tolist() == [7, 14]
    assert data.notes["layout"] == "class folders" and data.notes["test_fraction"] == 0.3
    again = load(root, test_fraction=0.3)  # from the cache: the same split
    assert again.notes["cache_hit"] and np.array_equal(again.test_images, data.test_images)
    everything = {img.tobytes() for img in np.concatenate([data.train_images, data.test_images])}
    assert len(everything) == 30  # every file in exactly one part
    assert len(load(root).test_labels) == 6  # the default fraction, 0.2


def test_train_val_test_folders_are_the_parts(tmp_path):
    for part, count in (("train", 4), ("val", 2), ("test", 3)):
        write_classes(tmp_path / "data" / part, {"x": count, "y": count}, seed=len(part))
    data = load(tmp_path / "data")
    assert (len(data.train_labels), len(data.val_labels), len(data.test_labels)) == (8, 4, 6)
    assert data.notes["layout"] == "train/val/test" and data.val_labels.tolist() == [0, 0, 1, 1]
    assert np.array_equal(data.val_images[0, 0], np.asarray(Image.open(tmp_path / "data" / "val" / "x" / "0.png")))
    assert load(tmp_path / "data").notes["cache_hit"]


def test_hidden_folders_and_files_are_not_read(tmp_path):
    root = write_classes(tmp_path / "data", {"a": 5, "b": 5, ".ipynb_checkpoints": 1})
    (root / "a" / "._0.png").write_bytes(b"\x00\x05\x16\x07")  # macOS's resource fork beside a file
    assert load(root).classes == ("a", "b")


# --- one-line errors ---------------------------------------------------------------------------

def test_layout_errors_say_what_to_fix(tmp_path):
    root = tmp_path / "data"
    assert message(root) == (f"data.root {root} is not a folder; point it at a folder of class folders "
                             "(ROOT/CLASS/*.png) or of train/ and test/ class folders")
    root.mkdir()
    assert message(root) == (f"data.root {root} holds no class folders; put each class's images in a folder of "
                             f"its own ({root}/CLASS/*.png), or in train/CLASS/ and test/CLASS/")
    write_classes(root, {"a": 2})
    (root / "b").mkdir()
    assert message(root) == (f"class folder {root / 'b'} holds no image files (.jpg .jpeg .png .ppm .bmp .pgm .tif "
                             ".tiff .webp); add its images or remove the folder")


def test_parts_with_different_class_folders_are_named(tmp_path):
    root = tmp_path / "data"
    write_classes(root / "train", {"a": 1, "b": 1, "c": 1})
    assert message(root) == (f"data.root {root} has train/ but no test/; give it train/ and test/ (val/ optional), "
                             "each holding the same class folders")
    write_classes(root / "test", {"a": 1, "d": 1})
    assert message(root) == (f"{root / 'test'} and {root / 'train'} hold different class folders (only in train: b, "
                             "c; only in test: d); give every part the same class folders")


def test_mixed_sizes_name_two_files_and_the_setting(tmp_path):
    root = write_classes(tmp_path / "data", {"a": 2, "b": 2})
    Image.fromarray(pixels((10, 12))).save(root / "b" / "1.png")
    assert message(root) == (f"image files differ in size: {root / 'a' / '0.png'} is 8x8 and {root / 'b' / '1.png'} "
                             "is 10x12 (height x width); set data.image_size (e.g. [8, 8]) to decode every image at "
                             "one size")
    assert load(root, image_size=(8, 8)).image_shape == (1, 8, 8)


def test_test_fraction_is_refused_where_the_folder_has_test(tmp_path):
    for part in ("train", "test"):
        write_classes(tmp_path / "data" / part, {"a": 1, "b": 1})
    assert message(tmp_path / "data", test_fraction=0.1) == (
        f"data.root {tmp_path / 'data'} has its own test/ folder, so option 'test_fraction' does not apply; remove it")
