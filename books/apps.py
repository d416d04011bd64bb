"""Books app: desks, books, and who may trade, view or manage them (django-guardian object permissions)."""

from django.apps import AppConfig


class BooksConfig(AppConfig):
    name = "books"
    verbose_name = "Desks and books"

    def ready(self) -> None:
        from books import defaults

        defaults.connect()
