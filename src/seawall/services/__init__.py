"""The use cases. Each service takes its dependencies in `__init__` and never imports Starlette."""
