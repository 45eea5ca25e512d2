"""Keyed randomness: every generator is derived from a key, never from a stream or global state.

A key names one unit of randomness (benchmark seed, corruption, its version, severity, subject,
sequence, camera, frame or span index, and the stream it feeds). Its canonical JSON is hashed with
SHA-256 and the digest seeds a `np.random.SeedSequence`, so the generator is the same on every
machine, in every process and whatever else was drawn before. Note: numpy only promises that a
bit generator's stream is stable; the distributions drawn from it (normal, poisson, ...) may change
between numpy versions, so pinned digests hold for the numpy version recorded with them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace

import numpy as np

ANY_CAMERA = "*"  # camera of a key shared by all views of a sequence


@dataclass(frozen=True)
class RngKey:
    """The name of one independent random generator (see the module docstring)."""

    seed: int
    corruption: str
    version: int
    severity: int
    subject: str
    sequence: str
    camera: str
    index: int  # absolute source frame index, or span index for temporal randomness
    stream: str = "frame"  # what `index` counts: "frame", or a span kind such as "window", "sequence"

    def canonical(self) -> bytes:
        """Canonical bytes of the key (stable across Python versions and platforms)."""
        fields = [
            int(self.seed), str(self.corruption), int(self.version), int(self.severity),
            str(self.subject), str(self.sequence), str(self.camera), int(self.index), str(self.stream),
        ]  # fmt: skip
        return json.dumps(fields, separators=(",", ":"), ensure_ascii=True).encode("ascii")

    def digest(self) -> str:
        return hashlib.sha256(self.canonical()).hexdigest()

    def generator(self) -> np.random.Generator:
        """An independent PCG64 generator seeded from the key's SHA-256 digest."""
        entropy = int.from_bytes(hashlib.sha256(self.canonical()).digest(), "little")
        return np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy)))

    def span(self, index: int, stream: str, camera: str | None = None) -> RngKey:
        """The key of span `index` of kind `stream` (same corruption, severity and sequence).

        `camera=ANY_CAMERA` gives a key shared by every view of the sequence.
        """
        return replace(self, index=int(index), stream=stream, camera=self.camera if camera is None else camera)
