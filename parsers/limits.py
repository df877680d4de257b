"""The ``[limits]`` of the configuration, as the readers' :class:`parsers.xlsx.ReadLimits` and the
archives' :class:`parsers.mail.archives.ArchiveLimits`.

Parsers do not know the configuration's types; anything with the attributes of
:class:`LimitSettings` (``intake.config.Limits`` has them) will do.
"""

from __future__ import annotations

from typing import Protocol

from parsers.mail.archives import ArchiveLimits
from parsers.safezip import ReadLimits


class LimitSettings(Protocol):
    @property
    def max_uncompressed_bytes(self) -> int: ...

    @property
    def max_compression_ratio(self) -> int: ...

    @property
    def max_rows(self) -> int: ...

    @property
    def max_columns(self) -> int: ...

    @property
    def seconds_per_file(self) -> float: ...


def read_limits(settings: LimitSettings) -> ReadLimits:
    """ReadLimits for one file: sizes, ratio, rows, columns and time from the configuration."""
    return ReadLimits(
        max_total_uncompressed=settings.max_uncompressed_bytes,
        max_compression_ratio=float(settings.max_compression_ratio),
        max_rows=settings.max_rows,
        max_cols=settings.max_columns,
        seconds=settings.seconds_per_file,
    )


class ArchiveLimitSettings(Protocol):
    @property
    def max_archive_members(self) -> int: ...

    @property
    def max_attachment_bytes(self) -> int: ...

    @property
    def max_uncompressed_bytes(self) -> int: ...

    @property
    def max_compression_ratio(self) -> int: ...


def archive_limits(settings: ArchiveLimitSettings) -> ArchiveLimits:
    """ArchiveLimits for one .zip attachment: its files, their total size, one file's size, the ratio."""
    return ArchiveLimits(
        max_members=settings.max_archive_members,
        max_total_uncompressed=settings.max_uncompressed_bytes,
        max_member_bytes=settings.max_attachment_bytes,
        max_compression_ratio=float(settings.max_compression_ratio),
    )
