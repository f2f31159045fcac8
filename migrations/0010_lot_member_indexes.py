from tortoise import migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [('models', '0009_redemption_held_index')]

    initial = False

    operations = [
        # A member's lots due to mature or to expire are found from two partial indexes of
        # that member's pending and live lots, so settling (every purchase and redemption)
        # no longer reads all of a member's live lots, nor every member's due lots: a member
        # with 7,805 live lots took 2 ms a purchase to settle, 3 us now (README,
        # Performance). Tortoise's model indexes cannot say WHERE with anything but an
        # equality, so these two live here (the same SQL on SQLite and PostgreSQL), named in
        # LotRow's docstring; the member's live lots by expiry also serve what the old
        # (member, remaining) index did. On PostgreSQL, CREATE INDEX holds writes to `lot`
        # while it builds (seconds per million lots).
        ops.RunSQL(
            [
                "CREATE INDEX lot_live_by_expiry ON lot (member_id, expires_at) "
                "WHERE remaining > 0",
                "CREATE INDEX lot_pending_by_date ON lot (member_id, available_at) "
                "WHERE NOT matured",
            ],
            reverse_sql=["DROP INDEX lot_live_by_expiry", "DROP INDEX lot_pending_by_date"],
        ),
        ops.RemoveIndex(
            model_name='LotRow',
            fields=['member_id', 'remaining'],
        ),
    ]
