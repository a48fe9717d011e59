"""Images to show a model: sine gratings with labels, and a user's own labelled image folders."""

from spacetorch.stimuli.image_folder import ImageFolderStimuli
from spacetorch.stimuli.sine_gratings import (
    COLORS,
    ORIENTATIONS,
    PHASES,
    SPATIAL_FREQUENCIES,
    SineGratings,
    sine_grating,
)

__all__ = [
    "COLORS",
    "ORIENTATIONS",
    "PHASES",
    "SPATIAL_FREQUENCIES",
    "ImageFolderStimuli",
    "SineGratings",
    "sine_grating",
]
