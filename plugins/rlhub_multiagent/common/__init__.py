"""What the multi-agent family shares: the joint spaces, the shared replay buffer, the per-agent
actors and centralised critics, and the rollout loop (:mod:`.off_policy`)."""
