"""`stacklab tour`: every concept of the seed as a short simulated scenario."""
