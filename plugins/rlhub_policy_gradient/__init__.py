"""Built-in plugin: policy-gradient methods SB3 lacks (REINFORCE, ACER)."""
