"""The versioned dataset store: ``<root>/<dataset>/v<N>/``, immutable once published."""

from pairforge.store.versions import Store, StoreError, VersionConflict, validate_name

__all__ = ["Store", "StoreError", "VersionConflict", "validate_name"]
