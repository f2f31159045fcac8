"""The demo program behind `python app.py seed`: tiers, rewards, surveys, an exchange
partner, members with known passwords and a few weeks of purchases.

Idempotent: running it twice adds nothing new. Goes through the domain services, so the
demo data obeys every rule real data does.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import Decimal

from api import db
from api.cache import build_cache
from api.settings import Settings, require_redis
from domain import clock
from domain.errors import DomainError
from domain.ledger.services import record_purchase
from domain.ledger.values import Idempotency
from domain.members.model import MarketingConsent, Registration
from domain.members.services import find_member, register_member
from domain.partners.services import create_partner, partner_by_code
from domain.program.services import update_program
from domain.rewards.model import RewardDraft
from domain.rewards.services import all_rewards, create_reward
from domain.surveys.model import QuestionDraft, QuestionType, SurveyDraft, SurveyKind
from domain.surveys.services import create_survey, surveys_page
from domain.tiers.model import TicketPriority, TierDraft
from domain.tiers.services import create_tier, list_tiers
from resolvers.events import invalidate_catalogue, invalidate_program

DEMO_PASSWORD = "demo-password"  # noqa: S105 - documented demo credentials
DEMO_TIERS = [
    TierDraft("Silver", 1, 0, Decimal("1"), ("Member prices", "Birthday bonus"),
              TicketPriority.NORMAL),
    TierDraft("Gold", 2, 1000, Decimal("1.25"), ("Free shipping", "Early access to sales"),
              TicketPriority.HIGH),
    TierDraft("Platinum", 3, 5000, Decimal("1.5"),
              ("Free shipping", "Early access to sales", "Priority support line"),
              TicketPriority.URGENT),
]
FIRST = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Margaret", "Ken", "Radia",
         "Linus", "Frances", "John", "Katherine", "Dennis", "Hedy"]
LAST = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Hamilton", "Thompson",
        "Perlman", "Torvalds", "Allen", "Backus", "Johnson", "Ritchie", "Lamarr"]


async def seed(settings: Settings, members: int) -> str:
    """Load the demo program, then bump the program's and the catalogue's versions as the
    mutations that change them do, so that servers sharing this Redis stop using their
    copies at once. (An embedded server keeps its cache in its own process: it sees the
    seed within `api.context.CATALOGUE_MEMO_SECONDS`.) A configured Redis that does not
    answer is refused before anything is written, as `serve` refuses it."""
    url = settings.redis_url
    cache = build_cache(url, f"{settings.redis_prefix}:cache") if url else None
    try:
        if cache is not None and url is not None:
            await require_redis(url, cache.ping)
        await db.migrate(settings)
        await db.open_database(settings)
        try:
            summary = await _seed(members)
        finally:
            await db.close_database()
        if cache is not None:
            await invalidate_program(cache)
            await invalidate_catalogue(cache)
        return summary
    finally:
        if cache is not None:
            await cache.close()


async def _seed(count: int) -> str:
    rng = random.Random(42)  # noqa: S311 - demo data, not security
    await update_program({"name": "Loyalgraph Demo Rewards", "currency": "USD",
                          "points_per_unit": Decimal("1"), "signup_bonus": 100,
                          "birthday_bonus": 250})
    existing = {t.name for t in await list_tiers()}
    for draft in DEMO_TIERS:
        if draft.name not in existing:
            await create_tier(draft)
    gold = next(t.id for t in await list_tiers() if t.name == "Gold")
    have = {r.name for r in await all_rewards()}
    for reward in [
        RewardDraft("Free coffee", 150, "Any size, any blend.", "drinks", stock=None,
                    coupon_validity_days=30),
        RewardDraft("$5 off your next order", 500, "On orders over $25.", "vouchers",
                    stock=1000, per_member_limit=3, coupon_validity_days=60),
        RewardDraft("Airport lounge pass", 2500, "One visit, one guest.", "experiences",
                    stock=50, per_member_limit=1, min_tier_id=gold, coupon_validity_days=90),
        RewardDraft("Tote bag", 800, "Organic cotton.", "merch", stock=5),
    ]:
        if reward.name not in have:
            await create_reward(reward)
    titles = {x.title for x in (await surveys_page(None, 100)).items}
    for survey in [
        SurveyDraft("How likely are you to recommend us?", SurveyKind.NPS, (
            QuestionDraft("How likely are you to recommend us to a friend?",
                          QuestionType.SCORE_0_10),
            QuestionDraft("What is the main reason for your score?", QuestionType.TEXT,
                          required=False)), points_reward=50),
        SurveyDraft("Your last store visit", SurveyKind.CSAT, (
            QuestionDraft("How satisfied were you with your visit?", QuestionType.SCORE_1_5),
            QuestionDraft("Which store?", QuestionType.CHOICE,
                          ("Downtown", "Airport", "Mall"), required=False)),
            points_reward=20),
    ]:
        if survey.title not in titles:
            await create_survey(survey)
    if await partner_by_code("SKYMILES") is None:
        await create_partner({"code": "SKYMILES", "name": "Sky Airways", "unit_name": "miles",
                              "outbound_rate": Decimal("0.5"), "inbound_rate": Decimal("1.5"),
                              "min_points": 100, "daily_cap_points": 20000})
    created = purchases = 0
    for i in range(count):
        email = "demo@loyalgraph.dev" if i == 0 else f"member{i}@loyalgraph.dev"
        if await find_member(email=email):
            continue
        first, last = rng.choice(FIRST), rng.choice(LAST)
        try:
            member = await register_member(
                Registration(
                    email=email,
                    password=DEMO_PASSWORD if i < 5 else None,
                    name=f"{first} {last}",
                    birthday=date(rng.randint(1950, 2005), rng.randint(1, 12), rng.randint(1, 28)),
                    external_id=f"crm-{1000 + i}",
                    tags=tuple(rng.sample(["newsletter", "vip", "app", "store", "online"], 2)),
                    consent=MarketingConsent(email=rng.random() < 0.6, push=rng.random() < 0.4),
                ),
                password_required=False,
            )
            created += 1
        except DomainError:
            continue
        for n in range(rng.randint(1, 6) if i else 4):
            order = f"DEMO-{member.id}-{n + 1}"
            amount = Decimal(rng.randint(1500, 40000)) / 100
            await record_purchase(
                member.id, order, amount, None,
                clock.utcnow() - timedelta(days=rng.randint(0, 25), hours=rng.randint(0, 23)),
                Idempotency("seed", order, {"order": order}))
            purchases += 1
    return (f"seeded: 3 tiers (Silver, Gold, Platinum), 4 rewards, 2 surveys, 1 partner "
            f"(SKYMILES), "
            f"{created} new members, "
            f"{purchases} purchases; log in as demo@loyalgraph.dev / {DEMO_PASSWORD}")
