import time

from django.core.management.base import BaseCommand, CommandError

from inbox import services
from marketplace.accounts.models import Profile, User


class Command(BaseCommand):
    help = (
        "Rebuild sellers' response obligations (the data behind the response rates and the "
        "average response time) from their messages, and say how many differed from the stored ones."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--seller", action="append", default=[], help="Only this seller (username); repeatable"
        )
        parser.add_argument("--dry-run", action="store_true", help="Compare only; change nothing")

    def handle(self, *args, seller, dry_run, **options):
        sellers = (
            User.objects.filter(profile__role=Profile.Role.SELLER).select_related("profile").order_by("pk")
        )
        if seller:
            sellers = sellers.filter(username__in=seller)
            missing = set(seller) - set(sellers.values_list("username", flat=True))
            if missing:
                raise CommandError(f"No seller called {', '.join(sorted(missing))}.")
        total = sellers.count()
        started = time.monotonic()
        done = obligations = changed = 0
        for result in services.rebuild_all_obligations(
            sellers=sellers.iterator(chunk_size=200), dry_run=dry_run
        ):
            done += 1
            obligations += result.obligations
            changed += result.changed
            self._progress(done, total)
        if total:
            self.stderr.write("")
        verb = "would change" if dry_run else "changed"
        seconds = time.monotonic() - started
        self.stdout.write(f"{done} sellers, {obligations} obligations, {changed} {verb}, in {seconds:.1f} s")

    def _progress(self, done: int, total: int) -> None:
        width = 30
        filled = width * done // total
        self.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} sellers", ending="")
