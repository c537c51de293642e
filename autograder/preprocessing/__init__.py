"""Chapter 2: data preprocessing (book/preprocessing/)."""
