"""Safe image loading for rrs: any common file in, an 8-bit RGB picture out.

Everything a user can hand the library (a path, raw bytes, an upload's file object) goes
through :func:`load_image`, which

* refuses empty, oversized (bytes), undecodable, truncated and too-small images, and images
  whose declared size is beyond a pixel limit (decompression bombs), each with an
  :class:`ImageError` that names the problem and says what to do;
* applies the EXIF orientation, takes the first frame of animations, and converts every
  colour mode (RGBA/LA/P with transparency composited on white, CMYK, 16-bit and 32-bit
  grayscale scaled — not clipped — to 8 bits, 1-bit, grayscale) to RGB.

:func:`to_tensor` then resizes the shorter side to the model's input size and takes the
centre square, giving the ``(3, S, S)`` float tensor in ``[0, 1]`` that every ``rrs``
function expects; the loaded original stays available for display.
"""
from __future__ import annotations

import io
import os
import struct
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from . import checks

__all__ = ["ImageError", "ImageInfo", "LoadedImage", "load_image", "to_tensor", "to_pil",
           "list_samples", "load_sample", "SAMPLES_DIR", "DEFAULT_MAX_BYTES", "DEFAULT_MAX_PIXELS",
           "MIN_SIDE", "IMAGE_SUFFIXES"]

#: Largest accepted file (bytes); a photo from a phone is 2–12 MB.
DEFAULT_MAX_BYTES = 25 * 1024 * 1024
#: Largest accepted decoded size (pixels), ~ 6300 × 6300; a 40 MP RGB image is 120 MB decoded.
DEFAULT_MAX_PIXELS = 40_000_000
#: Smallest accepted side (pixels); below this an interpretation map has nothing to show.
MIN_SIDE = 16

#: Bundled samples, located from the package (not the working directory).
SAMPLES_DIR = Path(__file__).resolve().parent.parent / "assets" / "samples"
_SAMPLE_SUFFIXES = (".png", ".jpg", ".jpeg")
#: File endings of the image formats the app and ``evaluate --images`` accept.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")

_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N")
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")


class ImageError(ValueError):
    """An image that cannot be used, with a plain-language message saying why and what to do."""


@dataclass(frozen=True)
class ImageInfo:
    """What the file was before conversion to 8-bit RGB (for display and provenance).

    ``size`` is ``(width, height)`` after the EXIF rotation; ``stored_size`` as stored.
    """

    format: str | None
    mode: str
    size: tuple[int, int]
    stored_size: tuple[int, int]
    frames: int = 1
    exif_rotated: bool = False
    transparency: bool = False
    num_bytes: int = 0
    notes: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        return {"format": self.format, "mode": self.mode, "size": list(self.size),
                "stored_size": list(self.stored_size), "frames": self.frames,
                "exif_rotated": self.exif_rotated, "transparency": self.transparency,
                "num_bytes": self.num_bytes, "notes": list(self.notes)}


@dataclass(frozen=True, eq=False)
class LoadedImage:
    """A decoded image: ``original`` is 8-bit RGB at full resolution (kept for display),
    ``name`` a display name (file name or sample name), ``info`` the source's properties."""

    original: Image.Image = field(repr=False)
    name: str
    info: ImageInfo

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` of the RGB image."""
        return self.original.size

    def to_tensor(self, size: int, *, resize_size: int | None = None) -> torch.Tensor:
        """Shorthand for :func:`to_tensor` ``(self, size, resize_size=resize_size)``."""
        return to_tensor(self, size, resize_size=resize_size)


# ----------------------------------------------------------------------------- reading

def _read_source(source, max_bytes: int) -> tuple[bytes, str]:
    """The raw bytes of ``source`` and a display name; size limits checked before decoding."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        name = path.name
        try:
            if path.is_dir():
                raise ImageError(f"{path} is a folder, not an image file; give the path of one image.")
            size = path.stat().st_size
        except FileNotFoundError:
            raise ImageError(f"No file at {path}; check the path (or give a sample name: "
                             f"{', '.join(n for n, _ in list_samples())}).") from None
        except PermissionError:
            raise ImageError(f"Cannot read {path}: permission denied.") from None
        except OSError as e:
            raise ImageError(f"Cannot read {path}: {e.strerror or e}.") from None
        _check_byte_size(size, max_bytes, name)
        try:
            data = path.read_bytes()
        except OSError as e:
            raise ImageError(f"Cannot read {path}: {e.strerror or e}.") from None
    elif isinstance(source, (bytes, bytearray, memoryview)):
        data, name = bytes(source), "image"
        _check_byte_size(len(data), max_bytes, name)
    elif hasattr(source, "read"):
        name = Path(str(getattr(source, "name", "") or "image")).name
        try:
            data = source.read(max_bytes + 1)
        except OSError as e:
            raise ImageError(f"Cannot read the uploaded image {name}: {e}.") from None
        if isinstance(data, str):
            raise ImageError(f"{name} was opened as text; open it in binary mode ('rb').")
        data = bytes(data)
        _check_byte_size(len(data), max_bytes, name, at_least=len(data) > max_bytes)
    else:
        raise ImageError(f"Cannot load an image from a {type(source).__name__}; give a file path, "
                         "bytes or a binary file object.")
    return data, name


def _check_byte_size(size: int, max_bytes: int, name: str, at_least: bool = False) -> None:
    if size == 0:
        raise ImageError(f"{name} is empty (0 bytes); choose a non-empty image file.")
    if size > max_bytes:
        shown = f"more than {max_bytes / 2**20:.1f} MB" if at_least else f"{size / 2**20:.1f} MB"
        raise ImageError(f"{name} is too large ({shown}; the limit is {max_bytes / 2**20:.1f} MB); "
                         "save a smaller or more compressed copy (e.g. JPEG, at most 4000 px a side).")


def _bomb_message(name: str, max_pixels: int, pixels: int | None = None) -> str:
    declared = f" ({pixels:,} pixels)" if pixels is not None else ""
    return (f"{name} declares a size{declared} beyond the safe limit of {max_pixels:,} pixels "
            "(it could be a decompression bomb); downscale it (e.g. to at most 4000×4000) and try again.")


def _open(data: bytes, name: str, max_pixels: int) -> Image.Image:
    """Open and fully decode the first frame, turning every decoder failure into ImageError."""
    with warnings.catch_warnings():
        # Pillow only *warns* between its limit and twice its limit; treat that as a refusal too.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            im = Image.open(io.BytesIO(data))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ImageError(_bomb_message(name, max_pixels)) from None
        except UnidentifiedImageError:
            raise ImageError(f"{name} is not an image file Pillow can read (is it really a PNG/JPEG/"
                             "GIF/BMP/TIFF/WebP?); export it again in one of these formats.") from None
        except (OSError, SyntaxError, ValueError, struct.error, EOFError, zlib.error) as e:
            raise ImageError(f"{name} could not be read as an image ({_short(e)}); the file may be "
                             "damaged — export it again.") from None
        w, h = im.size
        if w * h > max_pixels:
            raise ImageError(_bomb_message(name, max_pixels, w * h))
        if w <= 0 or h <= 0:
            raise ImageError(f"{name} declares an empty size {w}×{h}; the file is damaged.")
        try:
            im.seek(0)
            im.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ImageError(_bomb_message(name, max_pixels)) from None
        except (OSError, SyntaxError, ValueError, struct.error, EOFError, zlib.error, IndexError) as e:
            raise ImageError(f"{name} is truncated or corrupt and cannot be decoded ({_short(e)}); "
                             "download or export the image again.") from None
        except MemoryError:
            raise ImageError(f"{name} is too large to decode in memory; downscale it.") from None
    return im


def _short(e: Exception) -> str:
    text = str(e).strip().rstrip(".") or type(e).__name__
    return text if len(text) <= 120 else text[:117] + "..."


# -------------------------------------------------------------------------- conversion

def _scale_to_uint8(arr: np.ndarray, full_scale: float | None) -> np.ndarray:
    """Integer or float samples to 0..255: divide by ``full_scale/255`` (16-bit: by 257),
    or stretch min..max when the range is unknown."""
    a = arr.astype(np.float64)
    if full_scale is None:
        finite = a[np.isfinite(a)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
        a = np.nan_to_num(a, nan=lo, posinf=hi, neginf=lo)
        a = (a - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(a)
    else:
        a = a * (255.0 / full_scale)
    return np.clip(np.rint(a), 0, 255).astype(np.uint8)


def _deep_gray_to_l(im: Image.Image, fmt: str | None) -> tuple[Image.Image, str | None]:
    """16-bit, 32-bit integer and float grayscale to 8-bit 'L', scaled (never clipped)."""
    arr = np.asarray(im)
    note = None
    if im.mode in _SIXTEEN_BIT or (im.mode == "I" and fmt == "PNG"):
        # PNG's only 'I' source is 16-bit grayscale, whatever the Pillow version opens it as.
        out = _scale_to_uint8(arr, 65535.0)
    elif im.mode == "I":
        lo, hi = int(arr.min()), int(arr.max())
        if lo >= 0 and hi <= 255:
            out = arr.astype(np.uint8)
        elif lo >= 0 and hi <= 65535:
            out = _scale_to_uint8(arr, 65535.0)
        else:
            out, note = _scale_to_uint8(arr, None), "32-bit values stretched to 0..255"
    else:  # "F"
        finite = arr[np.isfinite(arr)]
        if finite.size and finite.min() >= 0 and finite.max() <= 1:
            out = _scale_to_uint8(np.nan_to_num(arr), 1.0)
        else:
            out, note = _scale_to_uint8(arr, None), "float values stretched to 0..255"
    return Image.fromarray(out, "L"), note


def _to_rgb(im: Image.Image, fmt: str | None, name: str) -> tuple[Image.Image, bool, str | None]:
    """Any Pillow mode to RGB; transparent pixels become white. Returns (rgb, had alpha, note)."""
    mode = im.mode
    if mode == "RGB" and "transparency" not in im.info:
        return im, False, None
    if mode in _SIXTEEN_BIT or mode in ("I", "F"):
        gray, note = _deep_gray_to_l(im, fmt)
        return gray.convert("RGB"), False, note
    has_alpha = mode in _ALPHA_MODES or "transparency" in im.info
    if has_alpha:
        try:
            rgba = im.convert("RGBA")
        except ValueError as e:
            raise ImageError(f"{name} uses colour mode {mode}, which cannot be converted ({_short(e)}); "
                             "save it as RGB.") from None
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB"), True, None
    try:
        # 1-bit → 0/255, L/P/CMYK/YCbCr/HSV → RGB with Pillow's own conversions.
        return im.convert("RGB"), False, None
    except ValueError as e:
        raise ImageError(f"{name} uses colour mode {mode}, which cannot be converted to RGB "
                         f"({_short(e)}); save it as an RGB PNG or JPEG.") from None


def load_image(source, max_bytes: int = DEFAULT_MAX_BYTES, max_pixels: int = DEFAULT_MAX_PIXELS,
               min_side: int = MIN_SIDE, name: str | None = None) -> LoadedImage:
    """Load an image safely and convert it to 8-bit RGB.

    Args:
        source: a path (``str``/``PathLike``), ``bytes``, or a binary file-like object
            (e.g. a Streamlit upload).
        max_bytes: largest accepted file size (default 25 MB).
        max_pixels: largest accepted ``width × height`` as declared by the file header,
            checked before decoding (decompression-bomb guard; default 40 M).
        min_side: smallest accepted side in pixels (default 16).
        name: display name (default: the file name, or ``"image"`` for bytes).

    Returns:
        :class:`LoadedImage` with the EXIF orientation applied, the first frame of an
        animation, transparency composited on white and deep (16/32-bit, float) grayscale
        scaled to 8 bits.

    Raises:
        ImageError: with a plain-language message for a missing, empty, oversized,
            non-image, truncated, corrupt, too-large-in-pixels or too-small image.
    """
    for arg, val in (("max_bytes", max_bytes), ("max_pixels", max_pixels), ("min_side", min_side)):
        if isinstance(val, bool) or not isinstance(val, (int, np.integer)) or val < 1:
            raise ValueError(f"{arg} must be a positive integer, got {val!r}")
    data, default_name = _read_source(source, int(max_bytes))
    name = name or default_name
    im = _open(data, name, int(max_pixels))
    fmt, mode, stored = im.format, im.mode, im.size
    frames = int(getattr(im, "n_frames", 1) or 1)
    notes = []
    if frames > 1:
        notes.append(f"first of {frames} frames used")
    try:
        orientation = int(im.getexif().get(0x0112, 1) or 1)
    except Exception:  # malformed EXIF must not stop an otherwise good picture
        orientation = 1
    rotated = False
    if orientation != 1:
        try:
            im = ImageOps.exif_transpose(im)
            rotated = True
        except Exception as e:  # noqa: BLE001 — keep the pixels, report the ignored tag
            notes.append(f"EXIF orientation {orientation} ignored ({_short(e)})")
    w, h = im.size
    if min(w, h) < min_side:
        raise ImageError(f"{name} is too small ({w}×{h} pixels); use an image at least "
                         f"{min_side}×{min_side} (ideally 224 px or more on the shorter side).")
    rgb, transparency, note = _to_rgb(im, fmt, name)
    if note:
        notes.append(note)
    if rgb is im:
        rgb = im.copy()  # detach from the decoder's file object
    rgb.info.clear()
    info = ImageInfo(fmt, mode, (w, h), stored, frames, rotated, transparency, len(data), tuple(notes))
    return LoadedImage(rgb, name, info)


# ------------------------------------------------------------------------- to tensors

def _as_pil(img) -> Image.Image:
    if isinstance(img, LoadedImage):
        return img.original
    if isinstance(img, Image.Image):
        return img if img.mode == "RGB" else _to_rgb(img, img.format, "image")[0]
    raise ValueError(f"img must be a LoadedImage or a PIL image, got {type(img).__name__}")


def _check_side(name: str, value) -> int:
    return checks.integer(name, value)


def to_tensor(img, size: int, *, resize_size: int | None = None) -> torch.Tensor:
    """Resize the shorter side to ``resize_size`` and take the centre ``size × size`` square.

    This is a model's reference evaluation preprocessing (torchvision's ``Resize(resize_size)``
    then ``CenterCrop(size)``, with the same output sizes and crop offsets), resampling with
    Pillow's bicubic filter, which antialiases when shrinking. For a model, pass
    ``size=model.input_size, resize_size=model.resize_size``: ImageNet models were evaluated
    on a centre crop with a margin (224 of 256 for ResNet-18 and EfficientNet-Lite0).

    Args:
        img: :class:`LoadedImage` or PIL image (converted to RGB if needed).
        size: output side in pixels (the model's ``input_size``).
        resize_size: the shorter side before cropping, ``≥ size``; default ``size`` (the
            largest centred square, no margin).

    Returns:
        float32 tensor ``(3, size, size)`` with values in ``[0, 1]``.
    """
    size = _check_side("size", size)
    resize_size = size if resize_size is None else _check_side("resize_size", resize_size)
    if resize_size < size:
        raise ValueError(f"resize_size ({resize_size}) must be at least size ({size})")
    im = _as_pil(img)
    w, h = im.size
    # torchvision's rule: the longer side is truncated, never below resize_size ≥ size
    long_side = int(resize_size * max(w, h) / min(w, h))
    nw, nh = (resize_size, long_side) if w <= h else (long_side, resize_size)
    if (nw, nh) != (w, h):
        im = im.resize((nw, nh), Image.Resampling.BICUBIC)
    left, top = int(round((nw - size) / 2.0)), int(round((nh - size) / 2.0))
    im = im.crop((left, top, left + size, top + size))
    arr = np.asarray(im, dtype=np.uint8)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(255.0).contiguous()


def to_pil(tensor) -> Image.Image:
    """A ``(3, H, W)`` (or ``(1, 3, H, W)``, ``(1, H, W)``, ``(H, W)``) tensor in ``[0, 1]`` as an
    8-bit RGB PIL image (values outside ``[0, 1]`` are clipped)."""
    if isinstance(tensor, torch.Tensor):
        t = tensor.detach().float().cpu()
    else:
        t = torch.as_tensor(np.asarray(tensor, dtype=np.float32))
    if t.dim() == 4 and t.shape[0] == 1:
        t = t[0]
    if t.dim() == 2:
        t = t[None]
    if t.dim() != 3 or t.shape[0] not in (1, 3):
        raise ValueError(f"expected an image tensor (3, H, W) or (1, H, W), got shape {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise ValueError("image tensor has non-finite values")
    if t.shape[0] == 1:
        t = t.expand(3, -1, -1)
    arr = (t.clamp(0, 1) * 255.0).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return Image.fromarray(np.ascontiguousarray(arr), "RGB")


# ----------------------------------------------------------------------------- samples

def list_samples() -> list[tuple[str, Path]]:
    """The bundled sample images as ``(name, path)`` sorted by name (name = file stem)."""
    if not SAMPLES_DIR.is_dir():
        return []
    return sorted((p.stem, p) for p in SAMPLES_DIR.iterdir()
                  if p.is_file() and p.suffix.lower() in _SAMPLE_SUFFIXES)


def load_sample(name: str) -> LoadedImage:
    """Load the bundled sample ``name`` (e.g. ``"coffee"``, ``"chelsea"``, ``"astronaut"``)."""
    samples = dict(list_samples())
    key = str(name).strip().lower()
    key = Path(key).stem if Path(key).suffix.lower() in _SAMPLE_SUFFIXES else key
    if key not in samples:
        raise ImageError(f"No sample image called {name!r}; available: {', '.join(sorted(samples))}.")
    return load_image(samples[key], name=key)
