"""rrs.images: every odd or malformed file gives the intended result or a clear ImageError."""
from __future__ import annotations

import os
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from rrs.images import (ImageError, LoadedImage, list_samples, load_image, load_sample, to_pil,
                        to_tensor)


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def _bomb_png(width: int, height: int) -> bytes:
    """A ~60-byte PNG whose header declares ``width × height`` RGB pixels."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr)
            + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + _png_chunk(b"IEND", b""))


def _save(img: Image.Image, path, **kw) -> str:
    img.save(path, **kw)
    return str(path)


def _noise_rgb(w=64, h=48, seed=0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB")


def _error(source, **kw) -> str:
    with pytest.raises(ImageError) as info:
        load_image(source, **kw)
    msg = str(info.value)
    assert "\n" not in msg and len(msg) < 400
    return msg


# ------------------------------------------------------------------ colour modes

def test_rgba_composited_on_white(tmp_path):
    arr = np.zeros((20, 30, 4), np.uint8)
    arr[:, :10] = (255, 0, 0, 0)      # fully transparent red -> white
    arr[:, 10:20] = (0, 0, 255, 255)  # opaque blue -> blue
    arr[:, 20:] = (0, 0, 0, 128)      # half-transparent black -> mid grey
    img = load_image(_save(Image.fromarray(arr, "RGBA"), tmp_path / "a.png"))
    out = np.asarray(img.original)
    assert img.original.mode == "RGB" and img.info.mode == "RGBA" and img.info.transparency
    assert (out[:, :10] == 255).all()
    assert (out[:, 10:20] == (0, 0, 255)).all()
    assert np.abs(out[:, 20:].astype(int) - 127).max() <= 1


def test_la_composited_on_white(tmp_path):
    arr = np.zeros((20, 20, 2), np.uint8)
    arr[:10] = (0, 0)      # transparent black -> white
    arr[10:] = (40, 255)   # opaque dark grey
    img = load_image(_save(Image.fromarray(arr, "LA"), tmp_path / "la.png"))
    out = np.asarray(img.original)
    assert img.info.mode == "LA"
    assert (out[:10] == 255).all() and (out[10:] == 40).all()


def test_palette_with_transparency(tmp_path):
    p = Image.new("P", (20, 20), 0)
    p.putpalette([255, 0, 0, 0, 200, 0] + [0] * 762)
    p.paste(1, (0, 0, 20, 10))
    path = _save(p, tmp_path / "p.png", transparency=0)  # palette index 0 (red) is transparent
    img = load_image(path)
    out = np.asarray(img.original)
    assert img.info.mode == "P" and img.info.transparency
    assert (out[:10] == (0, 200, 0)).all()
    assert (out[10:] == 255).all(), "transparent palette entries must become white, not red"


def test_cmyk_jpeg(tmp_path):
    arr = np.zeros((32, 32, 4), np.uint8)
    arr[:, 16:, 0] = 255  # right half pure cyan ink
    path = _save(Image.fromarray(arr, "CMYK"), tmp_path / "c.jpg", quality=95)
    img = load_image(path)
    out = np.asarray(img.original).astype(int)
    assert img.info.mode == "CMYK" and img.info.format == "JPEG"
    assert np.abs(out[:, :12] - 255).max() < 12          # no ink -> white
    assert np.abs(out[:, 20:] - (0, 255, 255)).max() < 12  # cyan


def test_sixteen_bit_grayscale_is_scaled_not_clipped(tmp_path):
    values = np.array([0, 1000, 32896, 50000, 65535], dtype=np.uint16)
    arr = np.repeat(np.repeat(values[None], 20, axis=0), 4, axis=1)  # 20 × 20
    path = _save(Image.fromarray(arr), tmp_path / "g16.png")
    assert Image.open(path).mode.startswith("I")  # really stored as 16-bit
    img = load_image(path)
    out = np.asarray(img.original)[0, ::4, 0]
    np.testing.assert_array_equal(out, np.rint(values / 257.0).astype(np.uint8))  # 0, 4, 128, 195, 255
    assert img.info.mode.startswith("I")


def test_thirty_two_bit_and_float_grayscale(tmp_path):
    arr = np.linspace(-1000, 3_000_000, 400).reshape(20, 20).astype(np.int32)
    img = load_image(_save(Image.fromarray(arr, "I"), tmp_path / "i32.tif"))
    out = np.asarray(img.original)[..., 0]
    assert out.min() == 0 and out.max() == 255 and np.all(np.diff(out.reshape(-1).astype(int)) >= 0)
    f = np.full((20, 20), 0.5, np.float32)
    img = load_image(_save(Image.fromarray(f, "F"), tmp_path / "f.tif"))
    assert (np.asarray(img.original) == 128).all()


def test_one_bit_and_grayscale(tmp_path):
    b = Image.new("1", (20, 20), 0)
    b.paste(1, (0, 0, 10, 20))
    img = load_image(_save(b, tmp_path / "b.png"))
    out = np.asarray(img.original)
    assert img.info.mode == "1" and (out[:, :10] == 255).all() and (out[:, 10:] == 0).all()
    g = load_image(_save(Image.new("L", (20, 20), 77), tmp_path / "g.png"))
    assert (np.asarray(g.original) == 77).all() and g.original.mode == "RGB"


def test_exif_orientation_applied(tmp_path):
    arr = np.zeros((20, 40, 3), np.uint8)  # stored 40 wide × 20 high
    arr[:, :20] = (255, 0, 0)   # left half red
    arr[:, 20:] = (0, 0, 255)   # right half blue
    im = Image.fromarray(arr, "RGB")
    exif = im.getexif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    path = _save(im, tmp_path / "rot.jpg", exif=exif.tobytes(), quality=95)
    img = load_image(path)
    out = np.asarray(img.original).astype(int)
    assert img.size == (20, 40) and img.info.exif_rotated and img.info.stored_size == (40, 20)
    # Turning clockwise puts the stored left (red) on top and the right (blue) at the bottom.
    assert np.abs(out[5, 10] - (255, 0, 0)).max() < 40
    assert np.abs(out[35, 10] - (0, 0, 255)).max() < 40


def test_animated_gif_first_frame(tmp_path):
    frames = [Image.new("RGB", (20, 20), c) for c in ((255, 0, 0), (0, 0, 255))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    img = load_image(path)
    out = np.asarray(img.original).astype(int)
    assert img.info.frames == 2 and "first of 2 frames" in img.info.notes[0]
    assert np.abs(out - (255, 0, 0)).max() < 10


def test_path_bytes_and_filelike_agree(tmp_path):
    path = _save(_noise_rgb(), tmp_path / "n.png")
    data = open(path, "rb").read()
    a = load_image(path)
    b = load_image(data)
    with open(path, "rb") as fh:
        c = load_image(fh)
    assert a.name == "n.png" and b.name == "image" and c.name == "n.png"
    assert a.original.tobytes() == b.original.tobytes() == c.original.tobytes()
    assert isinstance(a, LoadedImage) and a.info.num_bytes == len(data)


# ------------------------------------------------------------------- bad inputs

def test_truncated_png(tmp_path):
    data = open(_save(_noise_rgb(), tmp_path / "full.png"), "rb").read()
    path = tmp_path / "trunc.png"
    path.write_bytes(data[: len(data) // 2])
    assert "truncated or corrupt" in _error(path)


def test_truncated_jpeg(tmp_path):
    data = open(_save(_noise_rgb(128, 128), tmp_path / "full.jpg", quality=90), "rb").read()
    path = tmp_path / "trunc.jpg"
    path.write_bytes(data[: len(data) // 2])
    assert "truncated or corrupt" in _error(path)


def test_random_bytes_and_text_renamed(tmp_path):
    junk = tmp_path / "junk.png"
    junk.write_bytes(np.random.default_rng(1).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    assert "not an image file" in _error(junk)
    text = tmp_path / "notes.png"
    text.write_text("this is a text file, not a picture\n" * 20)
    msg = _error(text)
    assert "notes.png is not an image file" in msg
    assert "not an image file" in _error(b"%PDF-1.4 not a picture at all")


def test_empty_file_and_missing_file(tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    assert "empty (0 bytes)" in _error(empty)
    assert "empty (0 bytes)" in _error(b"")
    assert "No file at" in _error(tmp_path / "missing.png")
    assert "is a folder" in _error(tmp_path)


def test_decompression_bomb_header(tmp_path):
    huge = tmp_path / "bomb.png"
    huge.write_bytes(_bomb_png(100_000, 100_000))  # 10^10 pixels declared in 60 bytes
    msg = _error(huge)
    assert "decompression bomb" in msg and "downscale" in msg
    # Between Pillow's own limit and twice it Pillow only warns; that must be refused too.
    assert "decompression bomb" in _error(_bomb_png(10_000, 10_000))
    # Under Pillow's limit but over ours: our header check refuses it before decoding.
    assert "decompression bomb" in _error(_bomb_png(8_000, 8_000))


def test_pixel_limit_parameter(tmp_path):
    path = _save(_noise_rgb(100, 100), tmp_path / "px.png")
    msg = _error(path, max_pixels=5_000)
    assert "10,000 pixels" in msg and "5,000" in msg
    assert load_image(path, max_pixels=10_000).size == (100, 100)


def test_too_small(tmp_path):
    msg = _error(_save(Image.new("RGB", (10, 40)), tmp_path / "tiny.png"))
    assert "too small (10×40" in msg
    assert load_image(_save(Image.new("RGB", (16, 16)), tmp_path / "ok.png")).size == (16, 16)


def test_byte_limit(tmp_path):
    path = _save(_noise_rgb(), tmp_path / "big.png")
    size = os.path.getsize(path)
    assert "too large" in _error(path, max_bytes=size - 1)
    assert "too large" in _error(open(path, "rb").read(), max_bytes=1000)
    with open(path, "rb") as fh:
        assert "too large (more than" in _error(fh, max_bytes=1000)
    assert load_image(path, max_bytes=size).size == (64, 48)


def test_bad_source_type_and_limits():
    assert "Cannot load an image from a int" in _error(42)
    with pytest.raises(ValueError, match="max_bytes"):
        load_image(b"x", max_bytes=0)


# ---------------------------------------------------------------- tensors, samples

def test_to_tensor_resizes_shorter_side_and_centre_crops():
    arr = np.zeros((200, 400, 3), np.uint8)
    arr[:, :100] = (255, 0, 0)
    arr[:, 100:300] = (0, 255, 0)
    arr[:, 300:] = (0, 0, 255)
    t = to_tensor(Image.fromarray(arr, "RGB"), 64)
    assert t.shape == (3, 64, 64) and t.dtype == torch.float32
    assert 0 <= t.min() and t.max() <= 1
    # 400×200 -> 128×64, centre 64 columns = the green middle band
    inner = t[:, :, 2:-2]
    assert torch.allclose(inner, torch.tensor([0.0, 1.0, 0.0])[:, None, None].expand_as(inner), atol=0.02)
    tall = to_tensor(Image.fromarray(arr.transpose(1, 0, 2).copy(), "RGB"), 32)
    assert tall.shape == (3, 32, 32) and tall[1, 2:-2].min() > 0.98


@pytest.mark.parametrize("wh, resize_size, size", [((451, 300), 256, 224), ((300, 451), 256, 224),
                                                    ((384, 303), 293, 260), ((400, 328), 37, 32),
                                                    ((97, 61), 61, 61), ((64, 64), 72, 64)])
def test_to_tensor_with_resize_size_matches_torchvision(wh, resize_size, size):
    """Shorter side to resize_size, then the centre crop: the same pixels as torchvision's
    Resize + CenterCrop on the same PIL image (output sizes and crop offsets included)."""
    from torchvision import transforms
    w, h = wh
    picture = Image.fromarray(np.random.default_rng(w * h).integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB")
    reference = transforms.Compose([
        transforms.Resize(resize_size, interpolation=transforms.InterpolationMode.BICUBIC),
        transforms.CenterCrop(size), transforms.PILToTensor()])
    t = to_tensor(picture, size, resize_size=resize_size)
    assert t.shape == (3, size, size) and t.dtype == torch.float32
    assert torch.equal(t, reference(picture).float() / 255)
    if resize_size == size:
        assert torch.equal(t, to_tensor(picture, size))


def test_to_tensor_resize_size_keeps_a_margin():
    arr = np.zeros((200, 400, 3), np.uint8)
    arr[:, :, 1] = 255
    arr[:10] = arr[-10:] = (255, 0, 0)   # red bands 10 px deep at the top and bottom
    img = Image.fromarray(arr, "RGB")
    full = to_tensor(img, 100)                       # the whole height: the bands are inside
    assert full[0, 0].min() > 0.9 and full[0, -1].min() > 0.9
    cropped = to_tensor(img, 100, resize_size=125)   # 250×125, centre 100×100: bands cut off
    assert cropped[0].max() < 0.1 and cropped[1].min() > 0.9
    sample = load_sample("coffee")
    assert torch.equal(sample.to_tensor(64, resize_size=80), to_tensor(sample, 64, resize_size=80))
    assert not torch.equal(sample.to_tensor(64, resize_size=80), sample.to_tensor(64))
    for bad in (63, 0, 64.5, True):
        with pytest.raises(ValueError, match="resize_size"):
            to_tensor(sample, 64, resize_size=bad)


def test_to_pil_round_trip():
    img = load_sample("chelsea")
    t = to_tensor(img, 96)
    back = to_pil(t)
    assert back.size == (96, 96) and back.mode == "RGB"
    assert torch.equal(to_tensor(back, 96), t)
    assert to_pil(t[None]).size == (96, 96)
    with pytest.raises(ValueError, match="expected an image tensor"):
        to_pil(torch.zeros(2, 5, 5))


def test_samples_found_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    names = [n for n, _ in list_samples()]
    assert {"astronaut", "chelsea", "coffee", "horse"} <= set(names) and len(names) >= 12
    coffee = load_sample("coffee")
    assert coffee.name == "coffee" and coffee.original.mode == "RGB" and coffee.size == (512, 341)
    horse = load_sample("horse.png")
    assert horse.info.mode == "RGBA" and horse.info.transparency
    with pytest.raises(ImageError, match="available: astronaut"):
        load_sample("unicorn")


def test_every_sample_gives_a_model_tensor():
    for name, _ in list_samples():
        t = load_sample(name).to_tensor(32)
        assert t.shape == (3, 32, 32) and torch.isfinite(t).all()
