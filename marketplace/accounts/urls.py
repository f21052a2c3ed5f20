from django.contrib.auth import views as auth_views
from django.urls import path

from . import views

app_name = "accounts"

urlpatterns = [
    path("login/", views.LimitedLoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("signup/", views.signup, name="signup"),
    path("verify/resend/", views.resend_verification, name="resend-verification"),
    path("verify/<str:token>/", views.verify, name="verify-email"),
    path("profile/", views.edit_profile, name="profile"),
]
