from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index
from tortoise.migrations.constraints import CheckConstraint

CHECKS = [
    ("balance", "balance_available_nonneg", "available >= 0"),
    ("balance", "balance_pending_nonneg", "pending >= 0"),
    ("lot", "lot_remaining_nonneg", "remaining >= 0"),
    ("lot", "lot_remaining_le_points", "remaining <= points"),
]


async def enforce_checks(apps, schema_editor):
    """The ledger's last line of defence, in the database itself: CHECK constraints on
    PostgreSQL; on SQLite (which cannot add constraints to a table) triggers that abort."""
    client = schema_editor.client
    for table, name, check in CHECKS:
        if client.capabilities.dialect == "sqlite":
            for event in ("INSERT", "UPDATE"):
                await client.execute_query(
                    f'CREATE TRIGGER "{name}_{event.lower()}" BEFORE {event} ON "{table}" '
                    f"WHEN NOT ({_new(check)}) BEGIN "
                    f"SELECT RAISE(ABORT, 'CHECK constraint failed: {name}'); END"
                )
        else:
            await client.execute_script(
                f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" CHECK ({check})'
            )


async def backfill(apps, schema_editor):
    """Members that joined before the ledger get an empty balance and a birthday key."""
    client = schema_editor.client
    await client.execute_script(
        "INSERT INTO balance (member_id, available, pending, lifetime_earned, lifetime_spent, "
        "expired, qualifying_points, version, last_seq, last_hash, updated_at) "
        "SELECT id, 0, 0, 0, 0, 0, 0, 0, 0, '" + "0" * 64 + "', CURRENT_TIMESTAMP FROM member"
    )
    if client.capabilities.dialect == "sqlite":
        await client.execute_script(
            "UPDATE member SET birthday_md = strftime('%m-%d', birthday) "
            "WHERE birthday IS NOT NULL")
    else:
        await client.execute_script(
            "UPDATE member SET birthday_md = to_char(birthday, 'MM-DD') "
            "WHERE birthday IS NOT NULL")


def _new(check):
    """`available >= 0` -> `NEW.available >= 0` for a trigger's WHEN clause."""
    left, op, right = check.split(" ")
    right = right if right.isdigit() else f"NEW.{right}"
    return f"NEW.{left} {op} {right}"


class Migration(migrations.Migration):
    dependencies = [('models', '0001_initial')]

    initial = False

    operations = [
        ops.CreateModel(
            name='BalanceRow',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('member', fields.OneToOneField('models.MemberRow', source_field='member_id', db_constraint=True, to_field='id', related_name='balance', on_delete=OnDelete.CASCADE)),
                ('available', fields.BigIntField(default=0)),
                ('pending', fields.BigIntField(default=0)),
                ('lifetime_earned', fields.BigIntField(default=0)),
                ('lifetime_spent', fields.BigIntField(default=0)),
                ('expired', fields.BigIntField(default=0)),
                ('qualifying_points', fields.BigIntField(default=0)),
                ('qualifying_until', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('version', fields.BigIntField(default=0)),
                ('last_seq', fields.BigIntField(default=0)),
                ('last_hash', fields.CharField(default='0000000000000000000000000000000000000000000000000000000000000000', max_length=64)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'balance', 'app': 'models', 'constraints': [CheckConstraint(check='available >= 0', name='balance_available_nonneg'), CheckConstraint(check='pending >= 0', name='balance_pending_nonneg')], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='CampaignRow',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('name', fields.CharField(max_length=100)),
                ('multiplier', fields.DecimalField(default=1, max_digits=6, decimal_places=2)),
                ('bonus_points', fields.IntField(default=0)),
                ('starts_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('ends_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('tier_ids', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'campaign', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='IdempotencyRow',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('scope', fields.CharField(max_length=120)),
                ('key', fields.CharField(max_length=200)),
                ('request_hash', fields.CharField(max_length=64)),
                ('result', fields.JSONField(encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'idempotency_key', 'app': 'models', 'unique_together': (('scope', 'key'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='JobLeaseRow',
            fields=[
                ('name', fields.CharField(primary_key=True, unique=True, db_index=True, max_length=50)),
                ('holder', fields.CharField(max_length=100)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'job_lease', 'app': 'models', 'pk_attr': 'name'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='LedgerEntryRow',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('member', fields.ForeignKeyField('models.MemberRow', source_field='member_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('seq', fields.BigIntField()),
                ('kind', fields.CharField(max_length=20)),
                ('points', fields.BigIntField()),
                ('qualifying', fields.BigIntField(default=0)),
                ('occurred_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('available_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('expires_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('reason', fields.CharField(null=True, max_length=200)),
                ('order_id', fields.CharField(null=True, max_length=100)),
                ('purchase_id', fields.IntField(null=True)),
                ('prev_hash', fields.CharField(max_length=64)),
                ('hash', fields.CharField(max_length=64)),
            ],
            options={'table': 'ledger_entry', 'app': 'models', 'unique_together': (('member', 'seq'),), 'indexes': [Index(fields=['member_id', 'occurred_at']), Index(fields=['member_id', 'kind'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='LotRow',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('member', fields.ForeignKeyField('models.MemberRow', source_field='member_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('entry', fields.ForeignKeyField('models.LedgerEntryRow', source_field='entry_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('points', fields.BigIntField()),
                ('remaining', fields.BigIntField()),
                ('available_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('expires_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('matured', fields.BooleanField(default=False)),
                ('purchase_id', fields.IntField(null=True)),
            ],
            options={'table': 'lot', 'app': 'models', 'constraints': [CheckConstraint(check='remaining >= 0', name='lot_remaining_nonneg'), CheckConstraint(check='remaining <= points', name='lot_remaining_le_points')], 'indexes': [Index(fields=['member_id', 'remaining']), Index(fields=['matured', 'available_at']), Index(fields=['expires_at'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='AllocationRow',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('entry', fields.ForeignKeyField('models.LedgerEntryRow', source_field='entry_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('lot', fields.ForeignKeyField('models.LotRow', source_field='lot_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('points', fields.BigIntField()),
            ],
            options={'table': 'allocation', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='PurchaseRow',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('member', fields.ForeignKeyField('models.MemberRow', source_field='member_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('order_id', fields.CharField(unique=True, max_length=100)),
                ('amount', fields.DecimalField(max_digits=14, decimal_places=2)),
                ('currency', fields.CharField(max_length=3)),
                ('occurred_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('points_earned', fields.BigIntField()),
                ('refunded_amount', fields.DecimalField(default=0, max_digits=14, decimal_places=2)),
                ('points_reversed', fields.BigIntField(default=0)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'purchase', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='TierChangeRow',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('member', fields.ForeignKeyField('models.MemberRow', source_field='member_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('from_tier', fields.ForeignKeyField('models.TierRow', source_field='from_tier_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.SET_NULL)),
                ('to_tier', fields.ForeignKeyField('models.TierRow', source_field='to_tier_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.SET_NULL)),
                ('qualifying_points', fields.BigIntField()),
                ('valid_until', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('reason', fields.CharField(max_length=20)),
                ('changed_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'tier_change', 'app': 'models', 'indexes': [Index(fields=['member_id', 'changed_at'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='MemberRow',
            name='birthday_md',
            field=fields.CharField(null=True, db_index=True, max_length=5),
        ),
        ops.AddField(
            model_name='MemberRow',
            name='tier_valid_until',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='ProgramRow',
            name='purchase_retro_days',
            field=fields.IntField(default=30, null=True),
        ),
        ops.RunPython(enforce_checks),
        ops.RunPython(backfill),
    ]
