"""The web console under /ui/: server-rendered pages (Jinja2) with a little htmx, over the same
services and the same access decisions as the API. `console.py` holds what every page shares
(the session, forms and CSRF, rendering, errors); one module per page family."""
