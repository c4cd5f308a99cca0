"""The `seawall` command: one module per noun."""
