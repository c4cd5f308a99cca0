"""The management JSON API under /api/v1/, with the registry's rights model."""
