from django.core.management.base import BaseCommand

from attachments import services
from attachments.management.batches import run_batches


class Command(BaseCommand):
    help = (
        "Archive sent files nobody downloaded for ATTACHMENT_ARCHIVE_AFTER_DAYS (GLACIER on S3, an "
        "archive folder locally). Safe to run twice at once: rows another run holds are skipped."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Count what would be archived")

    def handle(self, *args, dry_run, **options):
        batches = services.archive_idle(dry_run=dry_run)
        run_batches(self, batches, dry_run=dry_run, done_verb="archived", dry_verb="would archive")
