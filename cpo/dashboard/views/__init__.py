"""Dashboard views, one module per page: adapters that check the role, call one selector or service, and render a
template."""
