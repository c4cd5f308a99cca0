"""Seawall: a self-hosted OCI / Docker container registry, secure and governed by default."""

__version__ = "0.1.0"
