"""Built-in plugin: multi-armed bandit algorithms and the k-armed bandit environments they run on."""
