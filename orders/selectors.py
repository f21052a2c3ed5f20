from django.shortcuts import get_object_or_404

from .models import Gig


def active_gigs(*, limit: int = 24):
    return list(
        Gig.objects.filter(is_active=True).select_related("seller__profile").order_by("-created_at")[:limit]
    )


def gig_detail(*, gig_id: int) -> Gig:
    return get_object_or_404(Gig.objects.select_related("seller__profile"), pk=gig_id, is_active=True)


def gigs_of_seller(*, seller):
    return list(Gig.objects.filter(seller=seller, is_active=True).order_by("-created_at"))


def seller_has_gig(*, seller, title: str) -> bool:
    return Gig.objects.filter(seller=seller, title=title).exists()
