"""``watcher similar`` and ``watcher links``: where else a photo was seen, who is linked to whom.

    watcher similar IMAGE [--limit N] [--distance D]   archived images closest to a local file
    watcher links [TARGET]                             accounts linked by photos or contacts

Both only read the data folder; neither needs a browser.
"""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path

from watcher.commands import open_archive
from watcher.detect.images import SAME_PHOTO_DISTANCE, ImageDecodeError, perceptual_hashes
from watcher.detect.known import KnownImage, load_known_images
from watcher.errors import WatcherError
from watcher.store.db import Store
from watcher.store.links import (
    MAX_EXAMPLES,
    ContactLink,
    PhotoLink,
    SimilarImage,
    load_image_index,
    photo_links,
    shared_contacts,
    where_seen,
)
from watcher.watchlist import load_watchlist

# `similar` lists near-misses too (marked), so the default radius is wider than a match.
DEFAULT_SIMILAR_DISTANCE = 16
MAX_IMAGE_BYTES = 100_000_000


def add_commands(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add ``watcher similar`` and ``watcher links`` to the command line."""
    similar = sub.add_parser(
        "similar",
        parents=[common],
        help="archived images closest to a photo, with their posts",
        description="The archived photos (and reference photos) closest to a photo you have, "
        "with their posts.",
        epilog="Examples:\n  watcher similar bangle.jpg\n  watcher similar bangle.jpg --limit 3",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    similar.add_argument("image", metavar="IMAGE", help="a local image file (jpg, png, webp)")
    similar.add_argument("--limit", type=int, default=10, help="how many images (default 10)")
    similar.add_argument(
        "--distance",
        type=int,
        default=DEFAULT_SIMILAR_DISTANCE,
        help=f"largest pHash distance listed (default {DEFAULT_SIMILAR_DISTANCE}; "
        f"{SAME_PHOTO_DISTANCE} or less is the same photo)",
    )
    links = sub.add_parser(
        "links",
        parents=[common],
        help="accounts linked by shared photos or contacts",
        description="Accounts linked by shared photos or shared contacts, with the posts "
        "that link them.",
        epilog="Examples:\n  watcher links\n  watcher links ivory-dealer-kh --all",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    links.add_argument("target", nargs="?", metavar="TARGET", help="only links of this target")
    links.add_argument(
        "--all",
        action="store_true",
        help=f"every shared photo of each pair (default: the first {MAX_EXAMPLES})",
    )


def cmd_similar(args: argparse.Namespace) -> int:
    """``watcher similar IMAGE``: the closest archived images and known reference photos."""
    path = Path(args.image)
    phash = _phash_of(path)
    if not 0 <= args.distance <= 64 or args.limit < 1:
        raise WatcherError("--distance must be 0-64 and --limit at least 1")
    references = _reference_photos(args)
    with open_archive(args) as store:
        index = load_image_index(store)
        found = where_seen(store, index, references or [], phash, args.limit, args.distance)
    print(f"{path}: pHash {phash:016x}")
    if not found.archived:
        print(f"no archived image within distance {args.distance}")
    for image in found.archived:
        print(_similar_line(image))
        for post in image.posts:
            line = f"    {post.target} post {post.post_id}  first seen {post.seen_at}"
            print(f"{line}  {post.permalink or ''}".rstrip())
    if references is not None:
        print(f"known reference photos within distance {args.distance}: {len(found.references)}")
        for known, distance in found.references:
            print(f"distance {distance:2}  reference {known.name}  ({known.path})")
    return 0


def _phash_of(path: Path) -> int:
    try:
        if path.stat().st_size > MAX_IMAGE_BYTES:
            raise WatcherError(f"{path} is larger than {MAX_IMAGE_BYTES} bytes")
        return perceptual_hashes(path.read_bytes()).phash
    except OSError as exc:
        raise WatcherError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except ImageDecodeError as exc:
        raise WatcherError(f"{path}: {exc}; give a jpg, png or webp photo") from exc


def _similar_line(image: SimilarImage) -> str:
    verdict = "same photo" if image.distance <= SAME_PHOTO_DISTANCE else "similar"
    return f"distance {image.distance:2}  {verdict:10}  image {image.sha256}"


def _reference_photos(args: argparse.Namespace) -> list[KnownImage] | None:
    """The watchlist's ``images.known`` reference photos; None when it names none."""
    watchlist_path = Path(args.watchlist)
    if not watchlist_path.is_file():
        return None
    watchlist = load_watchlist(watchlist_path)
    if not watchlist.images.known:
        return None
    return load_known_images(watchlist.images.known, watchlist_path.resolve().parent)


def cmd_links(args: argparse.Namespace) -> int:
    """``watcher links [TARGET]``: linked accounts and the evidence for each link."""
    with open_archive(args) as store:
        if args.target:
            _check_target(args, store, args.target)
        photos = photo_links(store, args.target, None if args.all else MAX_EXAMPLES)
        contacts = shared_contacts(store, args.target)
    scope = f" involving {args.target}" if args.target else ""
    if not photos and not contacts:
        print(f"no linked accounts{scope}")
        return 0
    print(f"accounts linked by shared photos{scope}: {len(photos)}")
    for link in photos:
        print(_photo_block(link))
    print(f"accounts linked by shared contacts{scope}: {len(contacts)}")
    for contact in contacts:
        print(_contact_block(contact))
    return 0


def _photo_block(link: PhotoLink) -> str:
    lines = [f"  {link.target_a} <-> {link.target_b}: {link.count} reposted photo(s)"]
    lines += [
        f"    {link.target_a} post {a} ~ {link.target_b} post {b} (pHash distance {d})"
        for a, b, d in link.examples
    ]
    if link.count > len(link.examples):
        lines.append(f"    ... and {link.count - len(link.examples)} more (--all lists them)")
    return "\n".join(lines)


def _contact_block(link: ContactLink) -> str:
    written = f" (as {', '.join(link.kinds)})" if link.kinds and link.kinds != [link.kind] else ""
    lines = [f"  {link.kind} {link.value}{written}: {', '.join(link.targets)}"]
    lines += [f"    {target} post {post} first seen {at}" for target, post, at in link.posts]
    return "\n".join(lines)


def _check_target(args: argparse.Namespace, store: Store, name: str) -> None:
    """WatcherError naming the known targets when ``name`` is none of them.

    Known: every target the archive has captured (some may have left the watchlist since)
    and those in the watchlist, when it can be read (links need only the archive).
    """
    known = store.target_names()
    with contextlib.suppress(WatcherError):
        if Path(args.watchlist).is_file():
            known += [t.name for t in load_watchlist(args.watchlist).targets]
    if name not in known:
        names = ", ".join(sorted(set(known))) or "none yet"
        raise WatcherError(f"no target named {name}; known: {names}")


COMMANDS = {"similar": cmd_similar, "links": cmd_links}
