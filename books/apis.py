"""Desks and books endpoints: what the caller may view, and (admins) creating them and granting them."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from books import selectors, serializers, services
from books.models import Book, Desk
from core.exceptions import InvalidInput, NotFound
from core.schema import ERRORS


class AdminsOnly(BasePermission):
    """The admin role and superusers (books sit below accounts: the role is read by its value)."""

    required = ("role:ADMIN",)
    message = "Only admins may set up desks, books and their grants."

    def has_permission(self, request: Any, view: Any) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and (user.is_superuser or getattr(user, "role", None) == "ADMIN"))


def _read_or_admin(view: APIView) -> list[BasePermission]:
    return [IsAuthenticated()] if view.request.method == "GET" else [AdminsOnly()]


class DesksApi(APIView):
    def get_permissions(self) -> list[Any]:
        return _read_or_admin(self)

    @extend_schema(operation_id="desks_list", responses={200: serializers.DesksOut, **ERRORS()}, tags=["books"])
    def get(self, request: Any) -> Response:
        books = selectors.books_viewable(request.user)
        by_desk: dict[int, list[str]] = {}
        for book in books:
            by_desk.setdefault(book.desk_id, []).append(book.code)
        desks = [
            {"code": d.code, "name": d.name, "books": by_desk.get(d.pk, [])}
            for d in selectors.desks_viewable(request.user)
        ]
        return Response(serializers.DesksOut({"desks": desks, "total": len(desks)}).data)

    @extend_schema(request=serializers.DeskIn, responses={201: serializers.DeskOut, **ERRORS()}, tags=["books"])
    def post(self, request: Any) -> Response:
        data = serializers.DeskIn(data=request.data)
        data.is_valid(raise_exception=True)
        desk = services.desk_create(actor=request.user, **data.validated_data)
        return Response({"code": desk.code, "name": desk.name, "books": []}, status=status.HTTP_201_CREATED)


class BooksApi(APIView):
    def get_permissions(self) -> list[Any]:
        return _read_or_admin(self)

    @extend_schema(operation_id="books_list", responses={200: serializers.BooksOut, **ERRORS()}, tags=["books"])
    def get(self, request: Any) -> Response:
        books = list(selectors.books_viewable(request.user))
        return Response(serializers.BooksOut({"books": books, "total": len(books)}).data)

    @extend_schema(request=serializers.BookIn, responses={201: serializers.BookOut, **ERRORS()}, tags=["books"])
    def post(self, request: Any) -> Response:
        data = serializers.BookIn(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        book = services.book_create(actor=request.user, desk_code=values.pop("desk"), **values)
        return Response(serializers.BookOut(book).data, status=status.HTTP_201_CREATED)


def _user(username: str) -> Any:
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise InvalidInput("Unknown user", code="unknown_user", fields={"username": f"No user {username!r}."})
    return user


GRANT_QUERY = [OpenApiParameter("username", str, required=True), OpenApiParameter("permission", str, required=True)]


class _GrantsApi(APIView):
    permission_classes = [AdminsOnly]
    model: type[Book] | type[Desk]
    grant_in: type[serializers.BookGrantIn] | type[serializers.DeskGrantIn]

    def _object(self, code: str) -> Book | Desk:
        obj = self.model.objects.filter(code=code).first()
        if obj is None:
            raise NotFound(f"No {self.model.__name__.lower()} {code!r}")
        return obj

    def _grant(self, request: Any, code: str, data: Any, *, add: bool) -> Response:
        obj = self._object(code)
        body = self.grant_in(data=data)
        body.is_valid(raise_exception=True)
        user, permission = _user(body.validated_data["username"]), body.validated_data["permission"]
        if add:
            services.grant_add(actor=request.user, obj=obj, user=user, permission=permission)
        else:
            services.grant_revoke(actor=request.user, obj=obj, user=user, permission=permission)
        answer = {"object": f"{self.model.__name__.lower()}:{obj.code}", "username": user.username}
        answer["permission"] = permission
        return Response(answer, status=status.HTTP_201_CREATED if add else status.HTTP_200_OK)

    def post(self, request: Any, code: str) -> Response:
        return self._grant(request, code, request.data, add=True)

    def delete(self, request: Any, code: str) -> Response:
        return self._grant(request, code, request.query_params, add=False)


class BookGrantsApi(_GrantsApi):
    model = Book
    grant_in = serializers.BookGrantIn

    @extend_schema(
        request=serializers.BookGrantIn, responses={201: serializers.GrantOut, **ERRORS(404)}, tags=["books"]
    )
    def post(self, request: Any, code: str) -> Response:
        return super().post(request, code)

    @extend_schema(parameters=GRANT_QUERY, responses={200: serializers.GrantOut, **ERRORS(404)}, tags=["books"])
    def delete(self, request: Any, code: str) -> Response:
        return super().delete(request, code)


class DeskGrantsApi(_GrantsApi):
    model = Desk
    grant_in = serializers.DeskGrantIn

    @extend_schema(
        request=serializers.DeskGrantIn, responses={201: serializers.GrantOut, **ERRORS(404)}, tags=["books"]
    )
    def post(self, request: Any, code: str) -> Response:
        return super().post(request, code)

    @extend_schema(parameters=GRANT_QUERY, responses={200: serializers.GrantOut, **ERRORS(404)}, tags=["books"])
    def delete(self, request: Any, code: str) -> Response:
        return super().delete(request, code)
