"""The runbook's spelling of ``scorer.config.settings``: the vault check and the settings."""

from scorer.config.settings import Settings, load_settings, vault_health

__all__ = ["Settings", "load_settings", "vault_health"]
