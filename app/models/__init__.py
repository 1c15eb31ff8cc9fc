"""Every model, imported so that `Base.metadata` knows all tables; then their mappers are
configured, once, here: otherwise a process's first ORM query does it (20-30 ms of CPU, in the
first run's start; issue 13)."""

from sqlalchemy.orm import configure_mappers

from app.models.automation import AutomationConfig, AutomationRun, RunEvent
from app.models.billing import CreditCostConfig, CreditTransaction, SiteAIBudgetAllocation
from app.models.planner import Cluster, ContentIdea, Keyword
from app.models.publishing import PublishingIntegration, PublishingSettings
from app.models.tenancy import Account, ApiKey, LoginFailures, Site, User
from app.models.writer import Content, Image, Task

configure_mappers()

__all__ = [
    "Account",
    "ApiKey",
    "AutomationConfig",
    "AutomationRun",
    "Cluster",
    "Content",
    "ContentIdea",
    "CreditCostConfig",
    "CreditTransaction",
    "Image",
    "Keyword",
    "LoginFailures",
    "PublishingIntegration",
    "PublishingSettings",
    "RunEvent",
    "Site",
    "SiteAIBudgetAllocation",
    "Task",
    "User",
]
