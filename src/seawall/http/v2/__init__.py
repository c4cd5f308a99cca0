"""One module per OCI Distribution resource."""
