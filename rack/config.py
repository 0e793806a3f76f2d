"""The runbook's spelling of ``scorer.config.settings``: the vault check and the settings."""

from scorer.config.settings import Purpose, Settings, load_settings, vault_health

__all__ = ["Purpose", "Settings", "load_settings", "vault_health"]
