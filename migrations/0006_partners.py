from tortoise import migrations
from tortoise.migrations import operations as ops
from decimal import Decimal
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0005_webhooks')]

    initial = False

    operations = [
        ops.CreateModel(
            name='PartnerRow',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('code', fields.CharField(unique=True, max_length=30)),
                ('name', fields.CharField(max_length=100)),
                ('unit_name', fields.CharField(max_length=50)),
                ('min_points', fields.IntField(null=True)),
                ('max_points', fields.IntField(null=True)),
                ('daily_cap_points', fields.IntField(null=True)),
                ('partner_daily_cap_points', fields.IntField(null=True)),
                ('fee_percent', fields.DecimalField(default=Decimal('0'), max_digits=7, decimal_places=4)),
                ('pending_timeout_hours', fields.IntField(default=24)),
                ('active', fields.BooleanField(default=True)),
                ('webhook_url', fields.CharField(null=True, max_length=2000)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'partner', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ExchangeQuoteRow',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('partner', fields.ForeignKeyField('models.PartnerRow', source_field='partner_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('member', fields.ForeignKeyField('models.MemberRow', source_field='member_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('points', fields.IntField()),
                ('partner_units', fields.IntField()),
                ('exact_units', fields.DecimalField(max_digits=24, decimal_places=6)),
                ('rate', fields.DecimalField(max_digits=18, decimal_places=6)),
                ('expires_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('used', fields.BooleanField(default=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'exchange_quote', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ExchangeRow',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('partner', fields.ForeignKeyField('models.PartnerRow', source_field='partner_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('member', fields.ForeignKeyField('models.MemberRow', source_field='member_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('direction', fields.CharField(max_length=10)),
                ('status', fields.CharField(max_length=10)),
                ('points', fields.IntField()),
                ('partner_units', fields.IntField()),
                ('rate', fields.DecimalField(max_digits=18, decimal_places=6)),
                ('exact', fields.DecimalField(max_digits=24, decimal_places=6)),
                ('fee', fields.DecimalField(default=Decimal('0'), max_digits=18, decimal_places=2)),
                ('partner_account_ref', fields.CharField(null=True, max_length=100)),
                ('partner_reference', fields.CharField(null=True, max_length=100)),
                ('inbound_reference', fields.CharField(null=True, max_length=100)),
                ('quote_id', fields.IntField(null=True, unique=True)),
                ('reason', fields.CharField(null=True, max_length=500)),
                ('debit_entry_id', fields.IntField(null=True)),
                ('credit_entry_id', fields.IntField(null=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('completed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('closed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'exchange', 'app': 'models', 'unique_together': (('partner_id', 'inbound_reference'),), 'indexes': [Index(fields=['partner_id', 'completed_at']), Index(fields=['member_id', 'partner_id', 'created_at']), Index(fields=['status', 'created_at'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='PartnerRateRow',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('partner', fields.ForeignKeyField('models.PartnerRow', source_field='partner_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('outbound_rate', fields.DecimalField(max_digits=18, decimal_places=6)),
                ('inbound_rate', fields.DecimalField(max_digits=18, decimal_places=6)),
                ('valid_from', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'partner_rate', 'app': 'models', 'unique_together': (('partner_id', 'valid_from'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
    ]
