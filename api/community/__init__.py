"""Community: share links, forks, stars, comments, follows and the feed, blocks, reports, mirrors.

One blueprint under ``/api/v1``: the routes sit where their objects do
(``/bots/{id}/star``, ``/users/{username}/follow``, ``/feed``, ``/moderation/reports``).
Each action users can spam has a per-user budget (:mod:`api.community.limits`).
"""

from flask_smorest import Blueprint

blp = Blueprint(
    "community",
    __name__,
    url_prefix="/api/v1",
    description="Sharing and community: share links, forks, stars, comments, follows, feed, "
    "moderation, mirrors",
)

# Each module registers its views on blp.
from api.community import (  # noqa: E402,F401
    blocks,
    comments,
    feed,
    follows,
    forks,
    mirrors,
    moderation,
    reports,
    sharing,
    stars,
)
