"""The versioned dataset store: ``<root>/<dataset>/v<N>/``, immutable once published."""

from pairforge.store.versions import DamagedVersion, Store, StoreError, VersionConflict, validate_name

__all__ = ["DamagedVersion", "Store", "StoreError", "VersionConflict", "validate_name"]
