from celery import shared_task

from . import services


@shared_task(name="attachments.make_thumbnail")
def make_thumbnail_task(attachment_id: int) -> None:
    """After an image is uploaded: the small version the thread shows."""
    from .thumbnails import make_thumbnail

    make_thumbnail(attachment_id=attachment_id)


@shared_task(name="attachments.finish_restores")
def finish_restores_task() -> int:
    """Beat: archived files whose restore is done become downloadable; the asker is told."""
    return services.finish_restores()


@shared_task(name="attachments.archive_idle")
def archive_idle_task() -> int:
    """Beat: archive the files nobody opened for ATTACHMENT_ARCHIVE_AFTER_DAYS."""
    return sum(services.archive_idle())


@shared_task(name="attachments.purge_old")
def purge_old_task() -> int:
    """Beat: delete files older than ATTACHMENT_PURGE_AFTER_DAYS and abandoned uploads."""
    return sum(services.purge_old())
