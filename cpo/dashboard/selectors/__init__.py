"""Reads for the dashboard pages, one module per page (overview, stations, sessions, tariffs, partners, cdrs,
analytics; occupancy and period serve analytics). Every list is bounded (paginated or limited) so pages stay fast on a
large network; aggregates are computed in the database."""
