"""Uploaded image bytes -> the BGR array ``mmcv.imread`` gives for the file.

An upload is checked before it is decoded: its size in bytes, then (from
the header, nothing decoded yet) its size in pixels, then a full decode by
Pillow that refuses a truncated file (OpenCV would fill the missing rows
and return the image). The array is then decoded by ``mmcv.imfrombytes``,
the decoder MMPretrain's ``ImageClassificationInferencer`` reads files
with, so the server sees the same pixels as the task's own model.
"""
import io
from typing import Tuple

import numpy as np

__all__ = ['ImageRejected', 'decode_image']


class ImageRejected(ValueError):
    """An upload that is not a usable image; ``status`` is its HTTP code
    (400: not an image or truncated, 413: too large)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _open_checked(data: bytes, max_pixels: int) -> Tuple[int, int]:
    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
            if width * height > max_pixels:
                raise ImageRejected(
                    413, f'The image is {width} x {height} pixels, more than '
                    f'the limit of {max_pixels} pixels (--max-image-pixels):'
                    ' send a smaller image.')
            img.load()  # decodes it all: raises on a truncated file
    except Image.DecompressionBombError as err:
        raise ImageRejected(
            413, f'{err} The limit here is {max_pixels} pixels '
            '(--max-image-pixels): send a smaller image.') from None
    except UnidentifiedImageError:
        raise ImageRejected(
            400, f'The upload ({len(data)} bytes, starting {data[:8]!r}) is '
            'not an image in a format Pillow / OpenCV read (JPEG, PNG, BMP, '
            'TIFF, WebP, ...): send the image file itself.') from None
    except (OSError, SyntaxError, ValueError) as err:
        if isinstance(err, ImageRejected):
            raise
        raise ImageRejected(
            400, f'The image is truncated or corrupt ({err}): send the '
            'whole file.') from None
    return width, height


def decode_image(data: bytes, max_bytes: int, max_pixels: int) -> np.ndarray:
    """Check and decode an uploaded image.

    Args:
        data (bytes): The file's bytes.
        max_bytes (int): Larger uploads are refused (413).
        max_pixels (int): Images of more pixels are refused (413) before
            they are decoded.

    Returns:
        np.ndarray: (H, W, 3) uint8, BGR, as ``mmcv.imread`` reads the file.
    """
    from mmcv.image import imfrombytes
    if len(data) > max_bytes:
        raise ImageRejected(
            413, f'The upload is {len(data)} bytes, more than the limit of '
            f'{max_bytes} bytes (--max-image-bytes).')
    if not data:
        raise ImageRejected(
            400, 'The request holds no image: send the image file as the '
            'body (Content-Type: application/octet-stream or image/*) or as '
            'the file of a multipart/form-data upload.')
    _open_checked(data, max_pixels)
    img = imfrombytes(data, flag='color')
    if img is None:  # a format Pillow reads but OpenCV does not
        raise ImageRejected(
            400, 'OpenCV (mmcv.imfrombytes) cannot decode this image: send '
            'it as JPEG, PNG, BMP, TIFF or WebP.')
    return img
