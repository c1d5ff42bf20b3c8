"""What the DQN family shares: the sum tree, prioritized replay and its hooks into SB3's algorithms."""
