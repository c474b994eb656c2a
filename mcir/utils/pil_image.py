"""PIL images <-> NumPy arrays (RGB order, bit depth kept) for the Python API."""

from __future__ import annotations

from typing import Any, Tuple

import numpy as np

from mcir.errors import DataError

#: Modes restored as they are: 8-bit RGB and gray, 16-bit gray (``I;16``) and 32-bit integer gray (``I``,
#: which is how PIL opens some 16-bit PNGs; values must lie in 0..65535).
KEPT_MODES = ("RGB", "L", "I;16", "I")
#: Modes converted first, to the mode given (the result comes back in that mode).
CONVERTED_MODES = {"1": "L", "P": "RGB", "PA": "RGB", "RGBA": "RGB", "RGBX": "RGB", "RGBa": "RGB", "LA": "L",
                   "La": "L", "CMYK": "RGB", "YCbCr": "RGB", "LAB": "RGB", "HSV": "RGB",
                   "I;16B": "I;16", "I;16L": "I;16", "I;16N": "I;16"}
_ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")


def pil_to_array(img: Any) -> Tuple[np.ndarray, str, bool]:
    """The pixels of a PIL image as an HxW (gray) or HxWx3 (RGB) array, uint8 or uint16.

    Args:
        img: A ``PIL.Image.Image``.

    Returns:
        ``(array, mode of the result image, whether an alpha channel was dropped)``.
    """
    mode = img.mode
    dropped = mode in _ALPHA_MODES or (mode == "P" and "transparency" in img.info)
    if mode in CONVERTED_MODES:
        target = CONVERTED_MODES[mode]
        img = img.convert("I") if target == "I;16" else img.convert(target)
        mode = target
    elif mode not in KEPT_MODES:
        raise DataError(f"PIL images of mode '{mode}' are not supported (use one of "
                        f"{', '.join(KEPT_MODES + tuple(CONVERTED_MODES))})")
    arr = np.asarray(img)
    if mode in ("I;16", "I"):
        if arr.size and (arr.min() < 0 or arr.max() > 65535):
            raise DataError(f"PIL image of mode '{img.mode}' has values outside 0..65535 (not a 16-bit image)")
        arr = arr.astype(np.uint16)
    return arr, mode, dropped


def array_to_pil(arr: np.ndarray, mode: str) -> Any:
    """A PIL image of mode ``mode`` from an array made by :func:`pil_to_array`'s inverse steps.

    Args:
        arr: HxW or HxWx3, uint8 (``RGB``, ``L``) or uint16 (``I;16``, ``I``).
        mode: The mode to return.

    Returns:
        The ``PIL.Image.Image``.
    """
    from PIL import Image

    if mode == "I":
        return Image.fromarray(arr.astype(np.int32))
    return Image.fromarray(np.ascontiguousarray(arr))
