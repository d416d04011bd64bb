"""Desks and books routes under /api/v1/ (a trailing slash is accepted too)."""

from django.urls import re_path

from books import apis

urlpatterns = [
    re_path(r"^desks/?$", apis.DesksApi.as_view(), name="desks"),
    re_path(r"^books/?$", apis.BooksApi.as_view(), name="books"),
    re_path(r"^desks/(?P<code>[^/]+)/grants/?$", apis.DeskGrantsApi.as_view(), name="desk-grants"),
    re_path(r"^books/(?P<code>[^/]+)/grants/?$", apis.BookGrantsApi.as_view(), name="book-grants"),
]
