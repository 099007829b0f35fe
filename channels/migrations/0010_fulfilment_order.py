"""Order's FBA outbound columns become channels.FulfilmentOrder rows, so orders knows no Amazon.

Forward: one row per order with an FBA status (orders 0008 then drops the columns). Backward (after orders
0008 put the columns back, empty): each row is copied back onto its order.
"""

import django.db.models.deletion
from django.db import migrations, models


def fulfilment_orders_copy(apps, schema_editor):
    Order = apps.get_model("orders", "Order")
    FulfilmentOrder = apps.get_model("channels", "FulfilmentOrder")
    db = schema_editor.connection.alias
    sent = Order.objects.using(db).exclude(fba_outbound_status="").order_by("pk")
    FulfilmentOrder.objects.using(db).bulk_create(
        (FulfilmentOrder(order_id=order_id, status=status, fulfilment_order_id=fulfilment_order_id, error=error)
         for order_id, status, fulfilment_order_id, error in sent.values_list(
             "pk", "fba_outbound_status", "fba_fulfillment_order_id", "fba_outbound_error").iterator()),
        batch_size=1000,
    )


def fulfilment_orders_restore(apps, schema_editor):
    Order = apps.get_model("orders", "Order")
    FulfilmentOrder = apps.get_model("channels", "FulfilmentOrder")
    db = schema_editor.connection.alias
    for row in FulfilmentOrder.objects.using(db).order_by("order_id").iterator():
        Order.objects.using(db).filter(pk=row.order_id).update(
            fba_outbound_status=row.status, fba_fulfillment_order_id=row.fulfilment_order_id,
            fba_outbound_error=row.error,
        )


class Migration(migrations.Migration):

    dependencies = [
        ('channels', '0009_fulfilment_location'),
        ('orders', '0007_fba_outbound_sending'),
    ]

    operations = [
        migrations.CreateModel(
            name='FulfilmentOrder',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('status', models.CharField(choices=[('queued', 'Waiting to be sent to Amazon'), ('sending', 'Being sent to Amazon'), ('received', 'Received by Amazon'), ('planning', 'Amazon is planning it'), ('processing', 'Amazon is picking and packing it'), ('complete', 'Shipped by Amazon'), ('unfulfillable', 'Amazon cannot fulfil it'), ('cancelled', 'Cancelled at Amazon'), ('refused', 'Refused by Amazon')], default='queued', max_length=20, verbose_name='FBA fulfilment')),
                ('fulfilment_order_id', models.CharField(help_text="The id this order was sent to Amazon's multi-channel fulfilment under.", max_length=40, verbose_name='FBA fulfilment order id')),
                ('error', models.TextField(blank=True, verbose_name='FBA fulfilment error')),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('order', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='fulfilment_order', to='orders.order')),
            ],
            options={
                'ordering': ['order_id'],
                'indexes': [models.Index(fields=['status'], name='channels_fulfilment_status')],
            },
        ),
        migrations.RunPython(fulfilment_orders_copy, fulfilment_orders_restore),
    ]
