"""What the family's algorithms share: the rollout (:mod:`.rollout`)."""
