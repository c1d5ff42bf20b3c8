"""Building blocks that rlhub's core and plugins share."""
