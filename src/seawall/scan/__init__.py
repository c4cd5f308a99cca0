"""Image scanning: reading layers safely and the analyzers that look inside them."""
