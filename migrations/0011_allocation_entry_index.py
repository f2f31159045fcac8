from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0010_lot_member_indexes')]

    initial = False

    operations = [
        # Giving back what a debit took (a cancelled redemption, an expired coupon, a
        # rejected exchange) finds the debit's allocations by its entry: without an index
        # that read the whole allocation table (1 ms for the benchmark's 42,787 rows,
        # growing with every debit the program ever made).
        ops.AddIndex(
            model_name='AllocationRow',
            index=Index(fields=['entry_id']),
        ),
    ]
