"""Built-in plugin: tabular TD, Monte Carlo and planning methods (Q-learning, SARSA, Dyna-Q, value iteration, ...)."""
