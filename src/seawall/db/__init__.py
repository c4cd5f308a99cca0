"""Metadata: the schema, its migrations, and the `MetadataStore` implementations."""
