from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView
from django.http import HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from marketplace.errors import DomainError

from . import services
from .forms import LimitedAuthenticationForm, ProfileForm, SignupForm


class LimitedLoginView(LoginView):
    """The login page, with the failed-login limits: 429 and the wait on the page."""

    form_class = LimitedAuthenticationForm
    template_name = "accounts/login.html"

    def form_invalid(self, form):
        response = super().form_invalid(form)
        if form.refusal is not None:
            response.status_code = 429
            response["Retry-After"] = str(form.refusal.retry_after)
        return response


def signup(request):
    if request.user.is_authenticated:
        return redirect("inbox:index")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            user = services.create_user(
                username=data["username"],
                password=data["password"],
                email=data["email"],
                display_name=data["display_name"],
                role=data["role"],
                send_verification=True,
            )
        except DomainError as exc:
            form.add_error("password" if exc.code == "weak_password" else "username", exc.detail)
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.info(request, f"Welcome! We sent a confirmation link to {user.email}.")
            return redirect("inbox:index")
    return render(request, "accounts/signup.html", {"form": form}, status=422 if form.errors else 200)


def verify(request, token):
    try:
        user = services.verify_email(token=token)
    except DomainError as exc:
        return render(request, "accounts/verify_failed.html", {"detail": exc.detail}, status=400)
    messages.success(request, f"Thanks, {user.email} is confirmed. You can send messages now.")
    return redirect("inbox:index" if request.user.is_authenticated else "accounts:login")


@login_required
@require_POST
def resend_verification(request):
    if request.user.is_email_verified:
        messages.info(request, "Your email address is already confirmed.")
    elif not request.user.email:
        messages.error(request, "Add an email address to your account first.")
    else:
        services.queue_verification_email(user=request.user)
        messages.info(request, f"We sent a new confirmation link to {request.user.email}.")
    next_url = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        next_url = reverse("accounts:profile")  # never bounce to another site
    return HttpResponseRedirect(next_url)


@login_required
def edit_profile(request):
    profile = request.user.profile
    initial = {
        "display_name": profile.display_name,
        "headline": profile.headline,
        "role": profile.role,
        "timezone": profile.timezone,
        "languages": ", ".join(profile.languages),
        "accepts_new_sellers": profile.accepts_new_sellers,
    }
    form = ProfileForm(request.POST or None, initial=initial)
    if profile.is_seller:
        del form.fields["accepts_new_sellers"]  # a buyer's switch
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.update_profile(
                user=request.user,
                display_name=data["display_name"],
                timezone_name=data["timezone"],
                languages=data["languages"].split(","),
                role=data["role"],
                headline=data["headline"],
                accepts_new_sellers=data.get("accepts_new_sellers"),
            )
        except DomainError as exc:
            form.add_error(None, exc.detail)
        else:
            messages.success(request, "Profile saved.")
            return redirect("accounts:profile")
    return render(request, "accounts/profile.html", {"form": form}, status=422 if form.errors else 200)
