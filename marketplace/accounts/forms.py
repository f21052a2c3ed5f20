import zoneinfo

from django import forms
from django.contrib.auth.forms import AuthenticationForm

from marketplace.ratelimit import RateLimited

from .models import Profile
from .throttle import authenticate_limited

TIMEZONE_CHOICES = [(name, name) for name in sorted(zoneinfo.available_timezones())]


class LimitedAuthenticationForm(AuthenticationForm):
    """Django's login form behind the failed-login limits (throttle.py). `refusal` is set when
    a limit refused the attempt, for the view's 429."""

    refusal: RateLimited | None = None

    def clean(self):
        username = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if username is not None and password:
            try:
                self.user_cache = authenticate_limited(self.request, username=username, password=password)
            except RateLimited as exc:
                self.refusal = exc
                raise forms.ValidationError(exc.detail, code=exc.code) from None
            if self.user_cache is None:
                raise self.get_invalid_login_error()
            self.confirm_login_allowed(self.user_cache)
        return self.cleaned_data


class SignupForm(forms.Form):
    username = forms.RegexField(
        regex=r"^[\w.@+-]+\Z",
        max_length=150,
        help_text="Letters, digits and @ . + - _ only.",
        error_messages={"invalid": "Use only letters, digits and @ . + - _ in a username."},
    )
    email = forms.EmailField()
    display_name = forms.CharField(max_length=80, required=False)
    role = forms.ChoiceField(
        choices=Profile.Role.choices, initial=Profile.Role.BUYER, widget=forms.RadioSelect
    )
    password = forms.CharField(widget=forms.PasswordInput, min_length=8, strip=False)


class ProfileForm(forms.Form):
    display_name = forms.CharField(max_length=80)
    headline = forms.CharField(max_length=160, required=False)
    role = forms.ChoiceField(choices=Profile.Role.choices, widget=forms.RadioSelect)
    timezone = forms.ChoiceField(choices=TIMEZONE_CHOICES)
    languages = forms.CharField(
        max_length=400, required=False, help_text="Comma-separated, e.g. English, French"
    )
    # Buyers only (the view drops it for sellers): the cold-messaging switch of moderation.rules.
    accepts_new_sellers = forms.BooleanField(
        required=False,
        label="Let sellers I have not contacted write to me (when we have an order)",
        help_text="Off: only sellers you wrote to first can message you.",
    )
