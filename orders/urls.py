from django.urls import path

from . import views

app_name = "orders"

urlpatterns = [
    path("", views.home, name="home"),
    path("gigs/<int:gig_id>/", views.gig_detail, name="gig"),
    path("u/<str:username>/", views.user_profile, name="user-profile"),
]
