"""What the distributed algorithms share: the Ray session and the rollout workers."""
