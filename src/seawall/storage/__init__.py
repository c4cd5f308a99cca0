"""Blob bytes: the `BlobStore` protocol and its backends."""
