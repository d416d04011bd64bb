"""Input and output shapes of the desks and books API (API.md, "Desks and books")."""

from __future__ import annotations

from rest_framework import serializers


class DeskOut(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    books = serializers.ListField(child=serializers.CharField())


class DesksOut(serializers.Serializer):
    desks = DeskOut(many=True)
    total = serializers.IntegerField()


class BookOut(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    desk = serializers.CharField(source="desk.code")
    currency = serializers.CharField()


class BooksOut(serializers.Serializer):
    books = BookOut(many=True)
    total = serializers.IntegerField()


class DeskIn(serializers.Serializer):
    code = serializers.CharField(max_length=32)
    name = serializers.CharField(max_length=100)


class BookIn(serializers.Serializer):
    code = serializers.CharField(max_length=32)
    name = serializers.CharField(max_length=100)
    desk = serializers.CharField(max_length=32)
    currency = serializers.CharField(max_length=3, required=False, default="USD")


class BookGrantIn(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    permission = serializers.ChoiceField(choices=["trade", "view"])


class DeskGrantIn(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    permission = serializers.ChoiceField(choices=["manage", "view"])


class GrantOut(serializers.Serializer):
    object = serializers.CharField(help_text="book:<code> or desk:<code>")
    username = serializers.CharField()
    permission = serializers.CharField()
