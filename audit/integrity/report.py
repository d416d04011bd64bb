"""What verification found: one Problem per bad sequence, gathered in a Verification report."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Stop collecting after this many: the first bad sequence is what the report names.
MAX_PROBLEMS = 100


@dataclass(frozen=True)
class Problem:
    sequence: int
    kind: str  # changed | deleted | inserted | reordered | seal | replaced | witness | trail
    detail: str

    def __str__(self) -> str:
        return f"event #{self.sequence} {self.kind}: {self.detail}"


class TrailBroken(Exception):
    """The database's trail is inconsistent (with itself or its witness): the sealer must not go on."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


@dataclass
class Verification:
    seals: int = 0
    events: int = 0
    unsealed: int = 0
    full: bool = True
    from_seal: int = 0  # events of seals after this number were re-hashed (0: all of them)
    head_number: int | None = None
    head_hash: str | None = None
    trail_id: str | None = None
    witness: str = "none"  # which witness was read, and what it holds
    unwitnessed: int = 0  # seals younger than the witness's grace, not in the witness yet
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first(self) -> Problem | None:
        return min(self.problems, key=lambda p: p.sequence) if self.problems else None

    def add(self, sequence: int, kind: str, detail: str) -> None:
        self.problems.append(Problem(sequence, kind, detail))

    def summary(self) -> str:
        if self.ok:
            head = f"; head seal {self.head_number} {self.head_hash}" if self.head_number else ""
            scope = "full" if self.full or not self.from_seal else f"incremental after seal {self.from_seal}"
            return (
                f"OK: {self.events} events in {self.seals} seals verified ({scope}); "
                f"{self.unsealed} newer events not sealed yet{head}; witness: {self.witness}"
            )
        first = self.first
        assert first is not None
        return f"FAILED: first bad event #{first.sequence} ({first.kind}): {first.detail}"

    def as_payload(self) -> dict[str, Any]:
        first = self.first
        return {
            "ok": self.ok,
            "first_bad_sequence": first.sequence if first else None,
            "kind": first.kind if first else None,
            "detail": first.detail if first else None,
            "problems": len(self.problems),
            "seals": self.seals,
            "events_verified": self.events,
            "unsealed": self.unsealed,
            "full": self.full,
            "from_seal": self.from_seal,
            "head_seal": self.head_number,
            "head_hash": self.head_hash,
            "trail_id": self.trail_id,
            "witness": self.witness,
        }
