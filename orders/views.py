import uuid

from django.shortcuts import render

from inbox.presence import online_user_ids
from marketplace.accounts.selectors import public_profile

from . import selectors


def home(request):
    return render(request, "orders/home.html", {"gigs": selectors.active_gigs()})


def gig_detail(request, gig_id):
    gig = selectors.gig_detail(gig_id=gig_id)
    return render(
        request,
        "orders/gig.html",
        {
            "gig": gig,
            "seller_online": gig.seller_id in online_user_ids([gig.seller_id]),
            "client_id": uuid.uuid4(),
        },
    )


def user_profile(request, username):
    person = public_profile(username=username)
    return render(
        request,
        "orders/user_profile.html",
        {
            "person": person,
            "gigs": selectors.gigs_of_seller(seller=person),
            "online": person.pk in online_user_ids([person.pk]),
            "client_id": uuid.uuid4(),
        },
    )
