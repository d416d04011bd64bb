"""Input and output shapes of the auth endpoints."""

from rest_framework import serializers


class LoginIn(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=256, trim_whitespace=False)


class RefreshIn(serializers.Serializer):
    refresh_token = serializers.CharField(max_length=4096)


class TokenOut(serializers.Serializer):
    access_token = serializers.CharField()
    token_type = serializers.CharField()
    expires_in = serializers.IntegerField()


class TokenPairOut(TokenOut):
    refresh_token = serializers.CharField()


class MessageOut(serializers.Serializer):
    message = serializers.CharField()
