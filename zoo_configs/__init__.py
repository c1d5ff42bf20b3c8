"""The RL Zoo style hyperparameter files of the built-in algorithms, installed as package data."""
