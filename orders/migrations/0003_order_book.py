"""Every order belongs to a book; the orders placed before books existed go to MAIN (books/0001)."""

from django.db import migrations, models
import django.db.models.deletion


def existing_orders_to_main(apps, schema_editor):
    Book = apps.get_model("books", "Book")
    Order = apps.get_model("orders", "Order")
    Order.objects.filter(book__isnull=True).update(book=Book.objects.get(code="MAIN"))


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0002_drop_redundant_user_index"),
        ("books", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="order",
            name="book",
            field=models.ForeignKey(
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="orders",
                to="books.book",
            ),
        ),
        migrations.RunPython(existing_orders_to_main, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="order",
            name="book",
            field=models.ForeignKey(
                db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name="orders", to="books.book"
            ),
        ),
        migrations.AddIndex(
            model_name="order",
            index=models.Index(fields=["book", "-created_at"], name="order_book_created_idx"),
        ),
    ]
