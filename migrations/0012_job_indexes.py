from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0011_allocation_entry_index')]

    initial = False

    operations = [
        # The ledger job (every minute by default) looks for members whose tier hold has
        # lapsed and balances whose qualifying points are due to drop: without these it
        # read every member and every balance (~2 ms for 10,000 members, holding the event
        # loop on SQLite; ~0.2 s a minute at a million).
        # (status first: the job asks for ACTIVE members, and SQLite, with no statistics,
        # would rather use the index of an equality than the range of a second index)
        ops.AddIndex(
            model_name='MemberRow',
            index=Index(fields=['status', 'tier_valid_until']),
        ),
        ops.AddIndex(
            model_name='BalanceRow',
            index=Index(fields=['qualifying_until']),
        ),
    ]
