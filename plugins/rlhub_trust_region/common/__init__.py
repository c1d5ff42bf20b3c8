"""What the trust-region family shares: natural-gradient pieces and KL diagnostics."""
