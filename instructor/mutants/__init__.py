"""Wrong implementations of each chapter's graded functions: ``MUTANTS`` (see autograder.mutants)."""
