"""Shared utilities: image I/O and numpy/tensor conversion."""

from mcir.utils.img_util import (
    batch2uint8_imgs,
    bgr2y,
    img2float,
    imfrombytes,
    img2tensor,
    imread,
    imwrite,
    tensor2img,
    tensor2uint8,
)

__all__ = [
    "batch2uint8_imgs", "bgr2y", "img2float", "imfrombytes", "img2tensor", "imread", "imwrite", "tensor2img",
    "tensor2uint8",
]
