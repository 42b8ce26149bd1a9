"""Images attached in chat: re-encoded by providers.images (shared with the gateway's image
parts, which take the same checks)."""

from providers.images import (
    FORMATS,
    MAX_IMAGE_BYTES,
    MAX_PIXELS,
    MAX_SIDE,
    SIGNATURES,
    THUMB_SIDE,
    ImageRefused,
    Normalized,
    image_normalize,
    looks_like_image,
)

__all__ = [
    "FORMATS",
    "MAX_IMAGE_BYTES",
    "MAX_PIXELS",
    "MAX_SIDE",
    "SIGNATURES",
    "THUMB_SIDE",
    "ImageRefused",
    "Normalized",
    "image_normalize",
    "looks_like_image",
]
