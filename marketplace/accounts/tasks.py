from celery import shared_task
from django.conf import settings
from django.core.mail import send_mail
from django.urls import reverse

from .models import User


@shared_task(name="accounts.send_verification_email")
def send_verification_email_task(user_id: int) -> None:
    from .services import email_verification_token

    user = User.objects.filter(pk=user_id).first()
    if user is None or user.is_email_verified or not user.email:
        return
    link = settings.SITE_URL + reverse("accounts:verify-email", args=[email_verification_token(user=user)])
    send_mail(
        subject="Confirm your email address",
        message=(
            f"Hi {user.profile.display_name},\n\n"
            f"Confirm your address to start messaging buyers and sellers:\n{link}\n\n"
            f"The link is valid for {settings.EMAIL_VERIFICATION_MAX_AGE_DAYS} days."
        ),
        from_email=None,
        recipient_list=[user.email],
    )
