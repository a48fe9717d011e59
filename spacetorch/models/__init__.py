"""Models, their layers and unit positions."""
