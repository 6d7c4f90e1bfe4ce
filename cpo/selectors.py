"""Reads on the network's assets."""

from django.db.models import QuerySet

from cpo.models import Token


def token_list_local(*, uid: str) -> QuerySet[Token]:
    return Token.objects.filter(uid=uid)
