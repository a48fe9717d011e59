"""Small datasets spacetorch can make on any machine, without downloads."""

from spacetorch.data.demo_images import DEMO_PHOTOS, make_demo_image_folder

__all__ = ["DEMO_PHOTOS", "make_demo_image_folder"]
