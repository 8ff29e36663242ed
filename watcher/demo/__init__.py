"""The bundled demo site: a loopback imitation of a dealer's Telegram channel and a shop.

It doubles as the fixture site of the test-suite. See :mod:`watcher.demo.site` for the
server, :mod:`watcher.demo.images` for the generated photos and :mod:`watcher.demo.scenario`
for the scripted demo.
"""

from watcher.demo.images import big_photo_bytes, encode, make_photo, variant
from watcher.demo.scenario import DEMO_PORT, DemoScenario, build_demo_site
from watcher.demo.site import DemoSite, SitePost

__all__ = [
    "DEMO_PORT",
    "DemoScenario",
    "DemoSite",
    "SitePost",
    "big_photo_bytes",
    "build_demo_site",
    "encode",
    "make_photo",
    "variant",
]
