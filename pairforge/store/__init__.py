"""The versioned dataset store: ``<root>/<dataset>/v<N>/``, immutable once published."""

from pairforge.store.versions import Store, StoreError, validate_name

__all__ = ["Store", "StoreError", "validate_name"]
