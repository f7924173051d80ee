"""Pre-shrink a data set's images so that their short side is at most N px,
in parallel, resumable; split files and JSON annotations stay valid."""
import json
import os
import os.path as osp
import shutil
from multiprocessing import Pool
from typing import Dict, List, Optional, Tuple

from PIL import Image

__all__ = ['IMAGE_EXTENSIONS', 'resize_image', 'resize_dataset']

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.webp')


def _atomic_target(dst: str) -> str:
    os.makedirs(osp.dirname(dst) or '.', exist_ok=True)
    return f'{dst}.tmp{os.getpid()}'


def resize_image(src: str,
                 dst: str,
                 short_side: int,
                 quality: int = 90
                 ) -> Tuple[str, Optional[Tuple[int, int]], Optional[str]]:
    """Shrink one image to ``short_side`` (never enlarge), same format.

    The file is written under a temporary name and renamed, so an existing
    ``dst`` is always complete (what makes :func:`resize_dataset` resumable).
    An image that cannot be decoded is copied unchanged and reported.

    Returns:
        tuple: ``(src, (width, height) of dst or None, error or None)``.
    """
    tmp = _atomic_target(dst)
    try:
        with Image.open(src) as img:
            img.load()
            w, h = img.size
            scale = short_side / min(w, h)
            if scale >= 1:
                shutil.copyfile(src, tmp)
                size = (w, h)
            else:
                size = (max(1, round(w * scale)), max(1, round(h * scale)))
                fmt = img.format
                out = img.resize(size, Image.BILINEAR, reducing_gap=None)
                kwargs = dict(quality=quality) if fmt == 'JPEG' else {}
                if fmt == 'JPEG' and out.mode not in ('RGB', 'L'):
                    out = out.convert('RGB')
                out.save(tmp, format=fmt, **kwargs)
        os.replace(tmp, dst)
        return src, size, None
    except Exception as e:  # a bad image: keep it as it is, say so
        if osp.exists(tmp):
            os.remove(tmp)
        shutil.copyfile(src, dst)
        return src, None, f'{type(e).__name__}: {e}'


def _resize_job(job):
    return resize_image(*job)


def _update_json(src: str, dst: str, sizes: Dict[str, Tuple[int, int]],
                 src_root: str) -> bool:
    """Copy a COCO-style JSON, updating ``width``/``height`` of the images
    that were resized; True if it was such a JSON."""
    try:
        with open(src) as f:
            ann = json.load(f)
    except (ValueError, UnicodeDecodeError):
        return False
    if not (isinstance(ann, dict) and isinstance(ann.get('images'), list)):
        return False
    base = osp.dirname(src)
    for img in ann['images']:
        if not isinstance(img, dict) or 'file_name' not in img:
            continue
        # file_name is relative to the JSON's folder or to the root
        for cand in (osp.join(base, img['file_name']),
                     osp.join(src_root, img['file_name'])):
            size = sizes.get(osp.normpath(cand))
            if size is not None:
                if 'width' in img:
                    img['width'] = size[0]
                if 'height' in img:
                    img['height'] = size[1]
                break
    tmp = _atomic_target(dst)
    with open(tmp, 'w') as f:
        json.dump(ann, f)
    os.replace(tmp, dst)
    return True


def resize_dataset(src: str,
                   dst: str,
                   short_side: int = 320,
                   workers: int = 1,
                   quality: int = 90) -> dict:
    """Mirror ``src`` into ``dst`` with every image's short side at most
    ``short_side``; other files (split files, JSON) are copied, COCO-style
    JSON with its image sizes updated. Paths stay the same, so the split
    files and annotations are valid for ``dst`` as ``data_root``. Images
    already in ``dst`` are kept (a stopped run resumes).

    Returns:
        dict: ``resized``, ``kept`` (already there), ``copied`` (other
        files), ``bad`` (``[(path, error)]``, copied unchanged).
    """
    if short_side < 1:
        raise ValueError(f'short_side must be >= 1, got {short_side}.')
    src, dst = osp.normpath(src), osp.normpath(dst)
    if not osp.isdir(src):
        raise FileNotFoundError(f'{src} is not a directory.')
    if osp.abspath(dst) == osp.abspath(src):
        raise ValueError('DST must differ from SRC (the images are '
                         'rewritten).')
    jobs, others, kept, sizes = [], [], 0, {}
    for root, dirs, files in os.walk(src):
        dirs.sort()
        if osp.abspath(root).startswith(osp.abspath(dst) + os.sep):
            continue
        for name in sorted(files):
            s = osp.join(root, name)
            d = osp.join(dst, osp.relpath(s, src))
            if name.lower().endswith(IMAGE_EXTENSIONS):
                if osp.exists(d):
                    kept += 1
                    try:
                        with Image.open(d) as im:
                            sizes[osp.normpath(s)] = im.size
                    except Exception:
                        pass
                else:
                    jobs.append((s, d, short_side, quality))
            elif '.tmp' not in name:
                others.append((s, d))
    bad: List[Tuple[str, str]] = []
    if workers > 1 and len(jobs) > 1:
        with Pool(workers) as pool:
            results = list(pool.imap_unordered(_resize_job, jobs, 16))
    else:
        results = [_resize_job(j) for j in jobs]
    for s, size, error in results:
        if error is not None:
            bad.append((s, error))
        elif size is not None:
            sizes[osp.normpath(s)] = size
    for s, d in others:  # after the images: their sizes go into the JSON
        os.makedirs(osp.dirname(d), exist_ok=True)
        if not (s.lower().endswith('.json')
                and _update_json(s, d, sizes, src)):
            shutil.copyfile(s, d)
    return dict(
        resized=len(jobs) - len(bad),
        kept=kept,
        copied=len(others),
        bad=sorted(bad))
