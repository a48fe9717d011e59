"""Small datasets spacetorch can make on any machine, without downloads."""

from spacetorch.data.dead_leaves import dead_leaves_image, make_dead_leaves_folder
from spacetorch.data.demo_images import DEMO_PHOTOS, make_demo_image_folder

__all__ = ["DEMO_PHOTOS", "dead_leaves_image", "make_dead_leaves_folder", "make_demo_image_folder"]
