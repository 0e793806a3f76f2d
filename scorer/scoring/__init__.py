"""Where text is scored: sentences and clauses, the sentence cache, the model runtimes."""
