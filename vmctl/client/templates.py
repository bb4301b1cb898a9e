"""A template named by its id or its name, as the CLI and ``Client.session`` take one."""

from __future__ import annotations

import uuid

from vmctl.api.models import Template
from vmctl.client.errors import NotFound

# The template ``Client.session()`` uses when none is named: made with the daemon's
# defaults on first use, and kept, so it can be configured like any other.
DEFAULT_TEMPLATE = "default"
NAME_TAKEN = "TEMPLATE_NAME_TAKEN"


def template_uuid(ref: str) -> str | None:
    """``ref`` as a template id (canonical form), or None when it is a name."""
    try:
        return str(uuid.UUID(ref))
    except ValueError:
        return None


def named(templates: list[Template], name: str) -> str | None:
    """The id of the template called ``name``, if one is."""
    return next((template.id for template in templates if template.name == name), None)


def id_of_named(templates: list[Template], name: str) -> str:
    found = named(templates, name)
    if found is None:
        raise NotFound(404, "TEMPLATE_NOT_FOUND", f"No template has the id or name {name!r}")
    return found
