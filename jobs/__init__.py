"""The scheduled jobs: each a plain function doing one step, returning what it did."""
