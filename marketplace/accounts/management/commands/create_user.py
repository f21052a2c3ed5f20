from django.core.management.base import BaseCommand, CommandError

from marketplace.accounts.models import Profile
from marketplace.accounts.services import create_user, grant_staff
from marketplace.errors import DomainError


class Command(BaseCommand):
    help = "Create a user with a profile (for operators and scripts)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--password", required=True)
        parser.add_argument("--email", default="")
        parser.add_argument("--display-name", default="")
        parser.add_argument("--seller", action="store_true", help="Create a seller (default: buyer)")
        parser.add_argument("--verified", action="store_true", help="Mark the email address as verified")
        parser.add_argument("--staff", action="store_true", help="Allow access to the Django admin")

    def handle(self, *args, **options):
        try:
            user = create_user(
                username=options["username"],
                password=options["password"],
                email=options["email"],
                display_name=options["display_name"],
                role=Profile.Role.SELLER if options["seller"] else Profile.Role.BUYER,
                verified=options["verified"],
                check_password_strength=False,
            )
        except DomainError as exc:
            raise CommandError(exc.detail) from exc
        if options["staff"]:
            grant_staff(user=user)
        role = "seller" if options["seller"] else "buyer"
        self.stdout.write(self.style.SUCCESS(f"Created {role} {user.username} (id {user.pk})."))
