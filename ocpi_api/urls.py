"""OCPI 2.2.1 routes, mounted under /ocpi/."""

urlpatterns: list = []
