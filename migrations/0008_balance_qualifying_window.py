from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0007_purchase_member_index')]

    initial = False

    operations = [
        # The tier window (days) that qualifying_points / qualifying_until were computed
        # over; NULL (every existing row) until the next full recomputation
        # (domain.ledger.tiering).
        ops.AddField(
            model_name='BalanceRow',
            name='qualifying_window',
            field=fields.IntField(null=True),
        ),
    ]
