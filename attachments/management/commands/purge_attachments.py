from django.core.management.base import BaseCommand

from attachments import services
from attachments.management.batches import run_batches


class Command(BaseCommand):
    help = (
        "Delete files older than ATTACHMENT_PURGE_AFTER_DAYS from storage (their messages show "
        "'file expired') and uploads never sent within a day. Safe to run twice at once."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="Count what would be deleted")

    def handle(self, *args, dry_run, **options):
        batches = services.purge_old(dry_run=dry_run)
        run_batches(self, batches, dry_run=dry_run, done_verb="deleted", dry_verb="would delete")
