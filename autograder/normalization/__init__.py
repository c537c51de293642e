"""Chapter 4: normalisation layers (book/normalization/)."""
