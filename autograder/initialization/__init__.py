"""Chapter 3: weight initialisation (book/initialization/)."""
