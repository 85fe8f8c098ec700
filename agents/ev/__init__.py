"""EV-charging domain: EVs driving through traffic, stations as simpy resources, smart charging under
grid limits, fitted to real sessions (Dundee, Boulder). See docs/ev.md."""
from agents.ev.config import EVConfig
from agents.ev.domain import EVDomain
from twin.registry import DomainSpec

__all__ = ["DOMAIN", "EVConfig", "EVDomain"]

DOMAIN = DomainSpec("ev", EVConfig, EVDomain, requires=("traffic",))  # EVs drive through traffic
