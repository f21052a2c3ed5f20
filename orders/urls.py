from django.urls import path

from . import views

app_name = "orders"

urlpatterns = [
    path("", views.home, name="home"),
    # Gigs: the public page (where a buyer also sends a request), and a seller's own.
    path("gigs/<int:gig_id>/", views.gig_detail, name="gig"),
    path("gigs/mine/", views.my_gigs, name="my-gigs"),
    path("gigs/new/", views.gig_new, name="gig-new"),
    path("gigs/<int:gig_id>/edit/", views.gig_edit, name="gig-edit"),
    path("gigs/<int:gig_id>/active/", views.gig_active, name="gig-active"),
    path("u/<str:username>/", views.user_profile, name="user-profile"),
    # A conversation's tools (sellers): custom offers, video calls, consultation slots.
    path("conversations/<int:conversation_id>/offers/", views.offer_new, name="offer-new"),
    path("conversations/<int:conversation_id>/calls/", views.call_start, name="call-start"),
    path(
        "conversations/<int:conversation_id>/consultations/",
        views.consultation_new,
        name="consultation-new",
    ),
    # The buttons of cards in a thread.
    path("offers/<int:offer_id>/accept/", views.offer_decide, {"decision": "accept"}, name="offer-accept"),
    path("offers/<int:offer_id>/decline/", views.offer_decide, {"decision": "decline"}, name="offer-decline"),
    path(
        "offers/<int:offer_id>/withdraw/", views.offer_decide, {"decision": "withdraw"}, name="offer-withdraw"
    ),
    path("calls/<int:call_id>/book/", views.call_book, name="call-book"),
    # Orders.
    path("orders/", views.order_list, name="list"),
    path("orders/<str:number>/", views.order_detail, name="order"),
    path("orders/<str:number>/panel/", views.order_panel, name="order-panel"),
    path("orders/<str:number>/messages/", views.order_messages, name="order-messages"),
    path("orders/<str:number>/send/", views.order_send, name="order-send"),
    *(
        path(f"orders/<str:number>/{action}/", views.order_action, {"action": action}, name=f"order-{action}")
        for action in views.ORDER_ACTIONS
    ),
]
