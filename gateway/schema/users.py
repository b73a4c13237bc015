"""User administration over GraphQL: find users, grant and revoke roles.

Admin only, enforced by the identity service (ListUsers, SetRoles); the gateway adds no
authority of its own. Roles travel in access tokens, so a changed role takes effect at
the user's next login or token refresh.
"""

from __future__ import annotations

import strawberry

from gateway.context import Info
from gateway.errors import rpc
from gateway.schema.identity import Role, User, identity
from services.api.keiko.identity import v1 as pb

MAX_PAGE = 500


def _role_to_pb(role: Role) -> pb.Role:
    return pb.Role.from_string(role.value)


@strawberry.type
class UserConnection:
    nodes: list[User]
    end_cursor: str | None
    has_next_page: bool


@strawberry.type
class UsersQuery:
    @strawberry.field(description="Users matching a search (admins only).")
    async def users(
        self,
        info: Info,
        query: str = "",
        role: Role | None = None,
        first: int = 50,
        after: str | None = None,
    ) -> UserConnection:
        info.context.require_token()
        reply = await rpc(
            identity(info).list_users(
                pb.ListUsersRequest(
                    query=query,
                    role=_role_to_pb(role) if role is not None else pb.Role(0),
                    page_size=max(1, min(first, MAX_PAGE)),
                    page_token=after or "",
                )
            )
        )
        return UserConnection(
            nodes=[User.from_pb(u) for u in reply.users],
            end_cursor=reply.next_page_token or None,
            has_next_page=bool(reply.next_page_token),
        )


@strawberry.type
class UsersMutation:
    @strawberry.mutation(
        description="Replace a user's roles (admins only; an admin cannot drop their own "
        "ADMIN role). Takes effect at the user's next login or token refresh."
    )
    async def set_user_roles(self, info: Info, user_id: strawberry.ID, roles: list[Role]) -> User:
        info.context.require_token()
        reply = await rpc(
            identity(info).set_roles(
                pb.SetRolesRequest(user_id=str(user_id), roles=[_role_to_pb(r) for r in roles])
            )
        )
        return User.from_pb(reply.user)
