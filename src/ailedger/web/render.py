"""Pages are Jinja2 templates (``web/templates``), autoescaped, rendered on the server.

``page`` adds what every page shows (the signed-in user, the CSRF token its forms and
htmx requests carry, the navigation) to what the route passes.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any, Final

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

TEMPLATES: Final = Path(__file__).parent / "templates"
STATIC: Final = Path(__file__).parent / "static"

# (path, label): one page per role, in the order a newcomer meets them.
NAVIGATION: Final = (
    ("/owner", "Data owner"),
    ("/research", "Researcher"),
    ("/provider", "GPU owner"),
    ("/privacy", "Private analytics"),
    ("/models", "Models"),
    ("/federated", "Federated"),
    ("/wearables", "Wearables"),
    ("/patient", "Patient"),
    ("/clinic", "Clinician"),
    ("/audit", "Audit"),
)


@cache
def environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,  # a missing value is a bug, not an empty cell
        trim_blocks=True,
        lstrip_blocks=True,
    )


def page(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """``template`` rendered with ``context`` and what every page needs."""
    html = (
        environment()
        .get_template(template)
        .render(
            user=getattr(request.state, "user", None),
            csrf_token=getattr(request.state, "csrf_token", ""),
            navigation=NAVIGATION,
            path=request.url.path,
            **context,
        )
    )
    return HTMLResponse(html, status_code=status_code)
