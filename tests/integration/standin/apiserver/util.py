"""Small helpers shared by the modules of the stand-in."""

import datetime
import random
import string
import uuid


def clone(value):
    """Copy a JSON value (dicts, lists, scalars) faster than copy.deepcopy."""
    if isinstance(value, dict):
        return {key: clone(item) for key, item in value.items()}
    if isinstance(value, list):
        return [clone(item) for item in value]
    return value


def now_rfc3339():
    return datetime.datetime.now(datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(text):
    """Parse a Kubernetes timestamp; return None when text is not one."""
    try:
        return datetime.datetime.strptime(
            text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    except (TypeError, ValueError):
        return None


def new_uid():
    return str(uuid.uuid4())


# The alphabet of generateName suffixes in apimachinery (no vowels, no
# look-alike characters).
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_random = random.SystemRandom()


def random_suffix(length=5):
    return "".join(_random.choice(_NAME_ALPHABET) for _ in range(length))


def random_hex(length):
    return "".join(_random.choice(string.hexdigits[:16]) for _ in range(length))


def human_duration(seconds):
    """Format an age like kubectl's and the server's tables ("5m10s")."""
    seconds = int(max(seconds, 0))
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        rest = seconds % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if days < 8:
        rest = hours % 24
        return f"{days}d{rest}h" if rest else f"{days}d"
    if days < 365 * 2:
        return f"{days}d"
    years = days // 365
    return f"{years}y{days % 365}d" if days % 365 else f"{years}y"
