"""Image loading whose every failure names the file, the cause and the fix,
optionally skipping undecodable training images."""
import os
from typing import Optional

import mmcv
import mmcv.image.io as mmcv_io
import numpy as np
from mmcv.transforms import LoadImageFromFile
from mmengine import fileio
from mmengine.logging import print_log
from mmpretrain.registry import TRANSFORMS

__all__ = ['ImageDecodeError', 'decode_image', 'CheckedLoadImageFromFile']

FIX = ('Run `python tools/misc/verify_dataset.py CONFIG` to list every bad '
       'image of the data set; copy the listed files again from the source, '
       'or remove their entries from the annotation file. To train on '
       'regardless, set `skip_bad=True` on the training pipeline\'s '
       'CheckedLoadImageFromFile (docs/data_loading.md).')


class ImageDecodeError(OSError):
    """An image file that cannot be read or decoded; the message names the
    file, the cause and the fix."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f'Cannot load the image {path}: {reason}. {FIX}')


def _is_truncated_jpeg(data: bytes) -> bool:
    """A JPEG without an end-of-image marker (FF D9) after its first scan.

    Entropy-coded data stuffs every 0xFF with 0x00, so FF D9 after the
    first start-of-scan (FF DA) can only be the end of the image (an EXIF
    thumbnail's comes before it); data appended after the image (camera
    trailers) does not make a complete file look truncated.
    """
    if data[:2] != b'\xff\xd8' or b'\xff\xd9' in data[-1024:]:
        return False
    sos = data.find(b'\xff\xda')  # -1: cut before the image data
    return sos < 0 or data.rfind(b'\xff\xd9') < sos


def decode_image(path: str,
                 backend: str = 'cv2',
                 color_type: str = 'color',
                 backend_args: Optional[dict] = None) -> np.ndarray:
    """Read and decode one image, as ``LoadImageFromFile`` does, raising an
    :class:`ImageDecodeError` that says what is wrong with the file.

    Recognised causes: a missing or unreadable file, a zero-byte file, a
    truncated JPEG (no end-of-image marker: OpenCV and turbojpeg would fill
    the rest with grey or fail without the file's name), and a file that
    the backend cannot decode (e.g. an HTML error page saved as .jpg).

    Args:
        path (str): The image file.
        backend (str): MMCV decoding backend: 'cv2', 'pillow' or
            'turbojpeg'. Defaults to 'cv2'.
        color_type (str): ``flag`` of :func:`mmcv.imfrombytes`. Defaults to
            'color'.
        backend_args (dict, optional): File backend arguments. Defaults to
            None.

    Returns:
        np.ndarray: The (H, W, 3) (or (H, W) for grayscale) uint8 image.
    """
    try:
        data = fileio.get(path, backend_args=backend_args)
    except FileNotFoundError:
        raise ImageDecodeError(path, 'the file does not exist') from None
    except OSError as e:
        raise ImageDecodeError(path, f'the file cannot be read ({e})') \
            from None
    if len(data) == 0:
        raise ImageDecodeError(
            path, 'the file is empty (0 bytes; an interrupted download or '
            'copy)')
    if _is_truncated_jpeg(data):
        raise ImageDecodeError(
            path, f'the JPEG is truncated ({len(data)} bytes, no '
            'end-of-image marker; an interrupted download or copy)')
    if backend == 'turbojpeg' and mmcv_io.jpeg is None:
        # mmcv.imfrombytes(backend='turbojpeg') needs mmcv.use_backend()
        # first, which would also change the process-wide default backend
        if mmcv_io.TurboJPEG is None:
            raise ImportError(
                "imdecode_backend='turbojpeg' needs PyTurboJPEG and "
                'libturbojpeg: `pip install "PyTurboJPEG<2"` (2.x needs '
                'libjpeg-turbo >= 3) and e.g. `apt install libturbojpeg0`.')
        mmcv_io.jpeg = mmcv_io.TurboJPEG()
    try:
        img = mmcv.imfrombytes(data, flag=color_type, backend=backend)
    except Exception as e:  # each backend raises its own types
        img, error = None, f'{type(e).__name__}: {e}'
    else:
        error = 'the decoder returned nothing'
    if img is None:
        head = data[:16]
        raise ImageDecodeError(
            path, f'the {backend} backend cannot decode it ({error}; '
            f'{len(data)} bytes starting with {head!r}), it is corrupt or '
            'not an image')
    return img


@TRANSFORMS.register_module()
class CheckedLoadImageFromFile(LoadImageFromFile):
    """``LoadImageFromFile`` whose failures name the file, the cause and the
    fix; with ``skip_bad=True`` an undecodable image is skipped.

    Required keys: ``img_path``. Added keys: ``img``, ``img_shape``,
    ``ori_shape``.

    With ``skip_bad=True`` the transform returns None for a bad image and
    logs a warning naming it with the number of images this process has
    skipped so far; MMEngine's ``BaseDataset`` then fetches another image in
    training (``LongTailMixin`` takes one of the same class for the
    class-balanced stream). Test pipelines keep the default: an evaluation
    must see every image.

    Args:
        skip_bad (bool): Skip undecodable images instead of raising.
            Defaults to False.
        to_float32 (bool): Return a float32 image. Defaults to False.
        color_type (str): ``flag`` of :func:`mmcv.imfrombytes`. Defaults to
            'color'.
        imdecode_backend (str): 'cv2', 'pillow' or 'turbojpeg'. Defaults to
            'cv2'.
        backend_args (dict, optional): File backend arguments. Defaults to
            None.
    """

    def __init__(self,
                 skip_bad: bool = False,
                 to_float32: bool = False,
                 color_type: str = 'color',
                 imdecode_backend: str = 'cv2',
                 backend_args: Optional[dict] = None) -> None:
        super().__init__(
            to_float32=to_float32,
            color_type=color_type,
            imdecode_backend=imdecode_backend,
            backend_args=backend_args)
        self.skip_bad = skip_bad
        self.num_skipped = 0

    def transform(self, results: dict) -> Optional[dict]:
        """Load the image of ``results['img_path']``; results that hold an
        image already and no path pass through (MMPretrain's inferencers
        load the image themselves and drop only ``LoadImageFromFile``)."""
        if 'img_path' not in results and 'img' in results:
            return results
        path = results['img_path']
        try:
            img = decode_image(path, self.imdecode_backend, self.color_type,
                               self.backend_args)
        except ImageDecodeError as e:
            if not self.skip_bad:
                raise
            self.num_skipped += 1
            print_log(
                f'CheckedLoadImageFromFile: skipped {path} ({e.reason}); '
                f'{self.num_skipped} image(s) skipped so far in process '
                f'{os.getpid()}.',
                logger='current',
                level=30)  # WARNING
            return None
        if self.to_float32:
            img = img.astype(np.float32)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results

    def __repr__(self) -> str:
        return (f'{super().__repr__()[:-1]}, skip_bad={self.skip_bad})')
