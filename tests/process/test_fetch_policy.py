"""The service builds its fetch policy from the settings and the kinds registry, and owns
its rate limits: one per process, kept across cycles."""

from __future__ import annotations

from dataclasses import replace

from scorer.config.settings import Settings
from scorer.ingest.fetch import RateLimits
from scorer.ingest.kinds import EDGAR, KINDS
from scorer.process.service import Service
from scorer.scoring.model import ModelLoader


def test_the_service_sends_each_kind_its_contact_and_owns_its_rate_limits(
    settings: Settings,
) -> None:
    contact = "Acme Research ops@acme.example"
    assert settings.contact(EDGAR) is None and settings.contact(KINDS["wire"]) is None
    with_contact = replace(settings, edgar_user_agent=contact)
    assert with_contact.contact(EDGAR) == contact

    one, other = (Service(s, loader=ModelLoader(lambda: None)) for s in (settings, with_contact))
    try:
        assert dict(one.policy.user_agents) == {}
        assert dict(other.policy.user_agents) == {"edgar": contact}
        assert isinstance(one.rate_limits, RateLimits) and one.rate_limits is not other.rate_limits
    finally:
        one.stop()
        other.stop()
