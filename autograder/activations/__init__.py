"""Chapter 1: activation functions (book/activations/)."""
