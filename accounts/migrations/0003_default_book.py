"""Every user gets a default book: MAIN of desk EQ (books/0001), granted for trading and viewing (and its desk
for viewing), so that what every user could do before books existed, they can still do."""

from django.contrib.auth.management import create_permissions
from django.db import migrations, models
import django.db.models.deletion


def default_book_for_everyone(apps, schema_editor):
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    User = apps.get_model("accounts", "User")
    Book = apps.get_model("books", "Book")
    Permission = apps.get_model("auth", "Permission")
    ContentType = apps.get_model("contenttypes", "ContentType")
    UserObjectPermission = apps.get_model("guardian", "UserObjectPermission")
    book = Book.objects.get(code="MAIN")
    book_type = ContentType.objects.get(app_label="books", model="book")
    desk_type = ContentType.objects.get(app_label="books", model="desk")
    grants = [
        (Permission.objects.get(content_type=book_type, codename="trade_book"), book_type, book.pk),
        (Permission.objects.get(content_type=book_type, codename="view_book"), book_type, book.pk),
        (Permission.objects.get(content_type=desk_type, codename="view_desk"), desk_type, book.desk_id),
    ]
    anonymous = "AnonymousUser"  # guardian's stand-in for anonymous visitors: never a trader
    users = User.objects.exclude(username=anonymous)
    users.filter(default_book__isnull=True).update(default_book=book)
    for user in users:
        for permission, content_type, object_pk in grants:
            UserObjectPermission.objects.get_or_create(
                user=user, permission=permission, content_type=content_type, object_pk=str(object_pk)
            )


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_role_groups"),
        ("books", "0001_initial"),
        ("guardian", "0002_generic_permissions_index"),
    ]

    operations = [
        migrations.AddField(
            model_name="user",
            name="default_book",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="books.book",
            ),
        ),
        migrations.RunPython(default_book_for_everyone, migrations.RunPython.noop),
    ]
