"""Images a model receives (chat attachments, the gateway's image parts): decoded, checked and
re-encoded by Pillow before anyone sees them.

What we keep and serve is never the uploaded file: it is our own PNG (when the image has
transparency) or JPEG, without metadata, at most `MAX_SIDE` pixels a side, plus a thumbnail. An
upload that isn't a PNG, JPEG, GIF or WebP image *by its bytes* (whatever its name or the
browser's type says), that is truncated or corrupt, or that would decode to more than
`MAX_PIXELS` pixels (a decompression bomb) is refused with a clear reason, before any full
decode: the header gives the size.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

MAX_IMAGE_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 40_000_000  # ~ 6,300 × 6,300; checked from the header before decoding
MAX_SIDE = 2048  # what models take anyway (they scale bigger images down)
THUMB_SIDE = 320
FORMATS = ("PNG", "JPEG", "GIF", "WEBP")
SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a")


class ImageRefused(ValueError):
    """The reason, for the user."""


@dataclass(frozen=True)
class Normalized:
    data: bytes
    media_type: str  # image/png | image/jpeg
    width: int
    height: int
    thumb: bytes
    thumb_media_type: str


def looks_like_image(data: bytes) -> bool:
    """By the bytes: PNG, JPEG, GIF or WebP signatures."""
    return data.startswith(SIGNATURES) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")


def _encode(image: Image.Image, *, alpha: bool) -> tuple[bytes, str]:
    out = io.BytesIO()
    if alpha:
        image.save(out, "PNG", optimize=True)
        return out.getvalue(), "image/png"
    image.convert("RGB").save(out, "JPEG", quality=85, optimize=True)
    return out.getvalue(), "image/jpeg"


def image_normalize(data: bytes) -> Normalized:
    """Our own re-encoding of `data`, or ImageRefused with the reason."""
    if len(data) > MAX_IMAGE_BYTES:
        raise ImageRefused(f"Images can be at most {MAX_IMAGE_BYTES // 1048576} MB.")
    if not looks_like_image(data):
        raise ImageRefused("This isn't a PNG, JPEG, GIF or WebP image (judged by its content).")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=FORMATS) as probe:
                width, height = probe.size
                if width < 1 or height < 1 or width * height > MAX_PIXELS:
                    raise ImageRefused(
                        f"The image is {width:,} × {height:,} pixels; at most "
                        f"{MAX_PIXELS // 1_000_000} megapixels."
                    )
                probe.verify()  # structure and checksums, without decoding the pixels
            with Image.open(io.BytesIO(data), formats=FORMATS) as image:
                image.seek(0)  # an animation: its first frame
                if image.format == "JPEG":
                    # Decode at a reduced scale when the photo is far bigger than what we keep:
                    # a 40-megapixel JPEG never takes 160 MB in this process.
                    image.draft("RGB", (MAX_SIDE, MAX_SIDE))
                image.load()
                image = ImageOps.exif_transpose(image)
                alpha = image.mode in ("RGBA", "LA", "PA") or (
                    image.mode == "P" and "transparency" in image.info
                )
                image = image.convert("RGBA" if alpha else "RGB")
                image.info.clear()  # no comment, EXIF, ICC or XMP goes out again
                image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
                encoded, media_type = _encode(image, alpha=alpha)
                thumb = image.copy()
                thumb.thumbnail((THUMB_SIDE, THUMB_SIDE), Image.Resampling.LANCZOS)
                thumb_data, thumb_type = _encode(thumb, alpha=alpha)
                return Normalized(
                    encoded, media_type, image.width, image.height, thumb_data, thumb_type
                )
    except ImageRefused:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRefused(
            f"The image would decode to more than {MAX_PIXELS // 1_000_000} megapixels."
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageRefused(
            "The image is damaged or not what its type says; it could not be read."
        ) from exc
