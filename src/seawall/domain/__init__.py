"""Pure code, no I/O: digests, names, manifests."""
