from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from decimal import Decimal
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields


async def create_program_row(apps, schema_editor):
    """The one program row, with the defaults of the first release (frozen here on purpose)."""
    client = schema_editor.client
    values = [1, "Loyalgraph Rewards", "USD", "1", 0, 365, 365, 0, 0]
    if client.capabilities.dialect == "sqlite":
        marks = ", ".join("?" for _ in values) + ", CURRENT_TIMESTAMP"
    else:
        marks = ", ".join(f"${i}" for i in range(1, len(values) + 1)) + ", now()"
        values[3] = Decimal(values[3])
    await client.execute_query(
        "INSERT INTO program (id, name, currency, points_per_unit, pending_days, expiry_days, "
        f"tier_window_days, signup_bonus, birthday_bonus, updated_at) VALUES ({marks})",
        values,
    )

class Migration(migrations.Migration):
    initial = True

    operations = [
        ops.CreateModel(
            name='ProgramRow',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('name', fields.CharField(max_length=100)),
                ('currency', fields.CharField(max_length=3)),
                ('points_per_unit', fields.DecimalField(max_digits=12, decimal_places=4)),
                ('pending_days', fields.IntField()),
                ('expiry_days', fields.IntField(null=True)),
                ('tier_window_days', fields.IntField()),
                ('signup_bonus', fields.IntField()),
                ('birthday_bonus', fields.IntField()),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'program', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.RunPython(create_program_row),
        ops.CreateModel(
            name='TierRow',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('name', fields.CharField(unique=True, max_length=50)),
                ('rank', fields.IntField(unique=True)),
                ('threshold', fields.BigIntField()),
                ('earn_multiplier', fields.DecimalField(default=Decimal('1'), max_digits=6, decimal_places=2)),
                ('benefits', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('support_priority', fields.CharField(default='NORMAL', max_length=10)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'tier', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='MemberRow',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('email', fields.CharField(unique=True, max_length=254)),
                ('password_hash', fields.CharField(null=True, max_length=255)),
                ('name', fields.CharField(null=True, max_length=100)),
                ('external_id', fields.CharField(null=True, unique=True, max_length=100)),
                ('status', fields.CharField(default='ACTIVE', db_index=True, max_length=10)),
                ('joined_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('birthday', fields.DateField(null=True)),
                ('tags', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('referral_code', fields.CharField(unique=True, max_length=16)),
                ('referred_by', fields.ForeignKeyField('models.MemberRow', source_field='referred_by_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.SET_NULL)),
                ('consent_email', fields.BooleanField(default=False)),
                ('consent_sms', fields.BooleanField(default=False)),
                ('consent_push', fields.BooleanField(default=False)),
                ('consent_updated_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('tier', fields.ForeignKeyField('models.TierRow', source_field='tier_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.SET_NULL)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'member', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='MemberTagRow',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('member', fields.ForeignKeyField('models.MemberRow', source_field='member_id', db_constraint=True, to_field='id', related_name='tag_rows', on_delete=OnDelete.CASCADE)),
                ('tag', fields.CharField(db_index=True, max_length=40)),
            ],
            options={'table': 'member_tag', 'app': 'models', 'unique_together': (('member', 'tag'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='RefreshTokenRow',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('member', fields.ForeignKeyField('models.MemberRow', source_field='member_id', db_constraint=True, to_field='id', related_name='refresh_tokens', on_delete=OnDelete.CASCADE)),
                ('token_hash', fields.CharField(unique=True, max_length=64)),
                ('family', fields.CharField(db_index=True, max_length=32)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('used_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('revoked_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'refresh_token', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
    ]
