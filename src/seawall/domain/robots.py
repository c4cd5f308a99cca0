"""What a robot account may be: how long its name and its life may be.

The limits are stated once, here; `IdentityService.create_robot` enforces them and the API's
schema and the CLI's options show them.
"""

from __future__ import annotations

from seawall.domain.names import MAX_ROBOT_NAME_LENGTH

# A robot's own part of NAMESPACE+NAME: what is left with the shortest namespace.
NAME_LIMIT = MAX_ROBOT_NAME_LENGTH - len("a+")
DEFAULT_DAYS = 90
MAX_DAYS = 3650  # ten years: a robot that never expires is a credential nobody reviews
DAY_SECONDS = 86_400
