"""The HTTP edge: routes, handlers, error translation, middleware."""
