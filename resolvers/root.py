"""The root types, composed from one query / mutation / subscription class per area."""

from __future__ import annotations

from strawberry.tools import merge_types

from resolvers.ledger import LedgerMutations, LedgerQueries, LedgerSubscriptions
from resolvers.members import MemberMutations, MemberQueries, MemberSubscriptions
from resolvers.node import NodeQueries
from resolvers.partners import PartnerMutations, PartnerQueries
from resolvers.program import ProgramMutations, ProgramQueries
from resolvers.rewards import RewardMutations, RewardQueries
from resolvers.surveys import SurveyMutations, SurveyQueries
from resolvers.tickets import TicketMutations, TicketQueries, TicketSubscriptions
from resolvers.webhooks import WebhookMutations, WebhookQueries

Query = merge_types("Query", (NodeQueries, MemberQueries, ProgramQueries, LedgerQueries,
                             RewardQueries, SurveyQueries, TicketQueries, PartnerQueries,
                             WebhookQueries))
Mutation = merge_types("Mutation", (MemberMutations, ProgramMutations, LedgerMutations,
                                   RewardMutations, SurveyMutations, TicketMutations,
                                   PartnerMutations, WebhookMutations))
Subscription = merge_types("Subscription", (MemberSubscriptions, LedgerSubscriptions,
                                           TicketSubscriptions))
