"""OCPI views, one file per module; each module file defines its `MODULE` for the registry (ocpi_api.modules)."""
