"""Community: share links, forks, stars, comments, follows, the feed, blocks, reports, mirrors."""
