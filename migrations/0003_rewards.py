from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index
from tortoise.migrations.constraints import CheckConstraint

async def enforce_stock_check(apps, schema_editor):
    """remaining >= 0 in the database itself: a CHECK on PostgreSQL, triggers on SQLite
    (which cannot add a constraint to an existing table); as in 0002."""
    client = schema_editor.client
    if client.capabilities.dialect == "sqlite":
        for event in ("INSERT", "UPDATE"):
            await client.execute_query(
                f'CREATE TRIGGER "reward_remaining_nonneg_{event.lower()}" BEFORE {event} '
                'ON "reward" WHEN NOT (NEW.remaining IS NULL OR NEW.remaining >= 0) BEGIN '
                "SELECT RAISE(ABORT, 'CHECK constraint failed: reward_remaining_nonneg'); END"
            )
    else:
        await client.execute_script(
            'ALTER TABLE "reward" ADD CONSTRAINT "reward_remaining_nonneg" CHECK (remaining >= 0)'
        )


class Migration(migrations.Migration):
    dependencies = [('models', '0002_ledger')]

    initial = False

    operations = [
        ops.CreateModel(
            name='RewardRow',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('name', fields.CharField(max_length=100)),
                ('description', fields.TextField(null=True, unique=False)),
                ('category', fields.CharField(null=True, db_index=True, max_length=50)),
                ('image_url', fields.CharField(null=True, max_length=500)),
                ('terms', fields.TextField(null=True, unique=False)),
                ('points_cost', fields.IntField()),
                ('stock', fields.IntField(null=True)),
                ('remaining', fields.IntField(null=True)),
                ('per_member_limit', fields.IntField(null=True)),
                ('min_tier', fields.ForeignKeyField('models.TierRow', source_field='min_tier_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.SET_NULL)),
                ('valid_from', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('valid_until', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('active', fields.BooleanField(default=True)),
                ('coupon_validity_days', fields.IntField(null=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'reward', 'app': 'models', 'constraints': [CheckConstraint(check='remaining >= 0', name='reward_remaining_nonneg')], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='RedemptionRow',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('reward', fields.ForeignKeyField('models.RewardRow', source_field='reward_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('member', fields.ForeignKeyField('models.MemberRow', source_field='member_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('code', fields.CharField(unique=True, max_length=16)),
                ('status', fields.CharField(default='ISSUED', max_length=10)),
                ('points_spent', fields.IntField()),
                ('entry_id', fields.BigIntField()),
                ('refund_entry_id', fields.BigIntField(null=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('expires_at', fields.DatetimeField(null=True, db_index=True, auto_now=False, auto_now_add=False)),
                ('used_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('cancelled_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('cancel_reason', fields.CharField(null=True, max_length=200)),
            ],
            options={'table': 'redemption', 'app': 'models', 'indexes': [Index(fields=['member_id', 'reward_id']), Index(fields=['status', 'expires_at'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='ProgramRow',
            name='refund_expired_redemptions',
            field=fields.BooleanField(null=True, default=False),
        ),
        ops.RunPython(enforce_stock_check),
    ]
