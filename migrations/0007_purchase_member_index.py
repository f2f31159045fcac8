from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0006_partners')]

    initial = False

    operations = [
        ops.AddIndex(
            model_name='PurchaseRow',
            index=Index(fields=['member_id', 'occurred_at']),
        ),
    ]
