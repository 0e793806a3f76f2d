"""An alias package for the operator's runbook, whose step 8 runs
``python -c "from rack.config import vault_health; print(vault_health())"``.
Everything lives in ``scorer``; ``rack.config`` re-exports the vault check."""
