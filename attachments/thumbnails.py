"""Thumbnails of sent images (Pillow), made by a Celery task after the upload is checked."""

import io
import logging

from django.db import transaction

from .models import Attachment
from .storage import blob_store

logger = logging.getLogger(__name__)

THUMBNAIL_SIZE = (320, 320)
MAX_PIXELS = 50_000_000  # larger images (or decompression bombs) get no thumbnail
MAX_SOURCE_BYTES = 50 * 1024 * 1024
# The sniffed types that get a thumbnail, and the one Pillow decoder each may use: a file that
# claims one type is never handed to another of Pillow's decoders (PSD, EPS, ...).
DECODER_FOR_TYPE = {"image/jpeg": "JPEG", "image/png": "PNG", "image/gif": "GIF", "image/webp": "WEBP"}


def make_thumbnail(*, attachment_id: int) -> str:
    from PIL import Image, ImageOps, UnidentifiedImageError

    attachment = Attachment.objects.filter(pk=attachment_id).exclude(status=Attachment.Status.EXPIRED).first()
    if attachment is None or attachment.thumbnail_key or attachment.content_type not in DECODER_FOR_TYPE:
        return ""
    if attachment.size > MAX_SOURCE_BYTES:  # read whole into memory below: keep that bounded
        return ""
    store = blob_store()
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        with store.open(attachment.key) as source:
            # Reads the header only.
            image = Image.open(io.BytesIO(source.read()), formats=[DECODER_FOR_TYPE[attachment.content_type]])
            if image.width * image.height > MAX_PIXELS:
                # Pillow itself only warns up to twice MAX_IMAGE_PIXELS, then decodes it all.
                logger.info("no thumbnail for attachment %s: %sx%s", attachment_id, image.width, image.height)
                return ""
            image = ImageOps.exif_transpose(image)
            image.thumbnail(THUMBNAIL_SIZE)
            output = io.BytesIO()
            image.convert("RGB").save(output, format="JPEG", quality=82)
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError):
        logger.warning("no thumbnail for attachment %s", attachment_id, exc_info=True)
        return ""
    key = f"{attachment.key}.thumb.jpg"
    store.save(key, [output.getvalue()])
    with transaction.atomic():
        updated = Attachment.objects.filter(pk=attachment.pk, thumbnail_key="").update(thumbnail_key=key)
    if not updated:
        store.delete(key)
    return key
