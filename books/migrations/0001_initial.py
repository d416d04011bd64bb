from django.db import migrations, models
import django.core.validators
import django.db.models.deletion

import books.models


def default_desk_and_book(apps, schema_editor):
    Desk = apps.get_model("books", "Desk")
    Book = apps.get_model("books", "Book")
    desk, _ = Desk.objects.get_or_create(code="EQ", defaults={"name": "Equities"})
    Book.objects.get_or_create(code="MAIN", defaults={"name": "Main book", "desk": desk, "currency": "USD"})


class Migration(migrations.Migration):
    initial = True

    dependencies = []

    operations = [
        migrations.CreateModel(
            name="Desk",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("code", models.CharField(max_length=32, unique=True, validators=[books.models.code_validator])),
                ("name", models.CharField(max_length=100)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
            ],
            options={
                "ordering": ["code"],
                "permissions": [("manage_desk", "Can manage the desk's limits and trading states")],
            },
        ),
        migrations.CreateModel(
            name="Book",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("code", models.CharField(max_length=32, unique=True, validators=[books.models.code_validator])),
                ("name", models.CharField(max_length=100)),
                (
                    "currency",
                    models.CharField(
                        default="USD",
                        max_length=3,
                        validators=[
                            django.core.validators.RegexValidator("^[A-Z]{3}$", "An ISO 4217 code: USD, EUR, ...")
                        ],
                    ),
                ),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "desk",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT, related_name="books", to="books.desk"
                    ),
                ),
            ],
            options={"ordering": ["code"], "permissions": [("trade_book", "Can submit orders in the book")]},
        ),
        migrations.RunPython(default_desk_and_book, migrations.RunPython.noop),
    ]
