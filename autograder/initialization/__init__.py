"""Chapter 3: weight initialisation (book/initialization/, in writing)."""
