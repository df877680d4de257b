"""Reference data: the indicator catalogue, the region lists and matching region names."""
