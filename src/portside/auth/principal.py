"""Who is asking: a user, a robot account, or nobody."""

from __future__ import annotations

from dataclasses import dataclass

from portside.meta.accounts import Robot, User

__all__ = ["Principal", "ANONYMOUS"]


@dataclass(frozen=True, slots=True)
class Principal:
    kind: str  # "user", "robot" or "anonymous"
    name: str
    user: User | None = None
    robot: Robot | None = None

    @property
    def sysadmin(self) -> bool:
        return self.user is not None and self.user.sysadmin

    @property
    def authenticated(self) -> bool:
        return self.kind != "anonymous"

    @property
    def user_id(self) -> int | None:
        return self.user.user_id if self.user else None

    @property
    def account_id(self) -> int | None:
        """The user's or the robot's id (None when anonymous)."""
        if self.user is not None:
            return self.user.user_id
        return self.robot.id if self.robot is not None else None

    @property
    def generation(self) -> int:
        """The account's generation: it moves when its credentials change (meta/accounts.py)."""
        if self.user is not None:
            return self.user.generation
        return self.robot.generation if self.robot is not None else 0

    @classmethod
    def of_user(cls, user: User) -> Principal:
        return cls("user", user.username, user=user)

    @classmethod
    def of_robot(cls, robot: Robot) -> Principal:
        return cls("robot", robot.name, robot=robot)


ANONYMOUS = Principal("anonymous", "anonymous")
