"""Swagger UI's files, served by the app from the installed ``swagger-ui-bundle`` package.

``/api/docs`` (flask-smorest's page) loads its script and style from
``OPENAPI_SWAGGER_UI_URL``; pointing that here keeps the docs working without
internet and pins the Swagger UI version to the package's (swagger-ui 4.15.5 in
swagger-ui-bundle 1.1.0). The version is part of the URL, so browsers may cache
the files for long.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, abort, send_from_directory
from swagger_ui_bundle import swagger_ui_path

from api.access import public

SWAGGER_UI_DIR = Path(str(swagger_ui_path))
# "swagger-ui-4.15.5": the bundled version, part of every asset URL.
SWAGGER_UI_VERSION = SWAGGER_UI_DIR.name
SWAGGER_UI_URL = f"/api/docs/assets/{SWAGGER_UI_VERSION}/"
# The page needs only scripts, styles and images; the package's own index.html would load
# the public Petstore example, so it is not served.
SERVED_SUFFIXES = (".js", ".css", ".png", ".map")
MAX_AGE_S = 30 * 24 * 3600

docs_assets_bp = Blueprint("docs-assets", __name__)


@docs_assets_bp.get(f"{SWAGGER_UI_URL}<path:filename>")
@public
def swagger_ui_asset(filename: str) -> Response:
    """One file of the bundled Swagger UI."""
    if not filename.endswith(SERVED_SUFFIXES):
        abort(404)
    return send_from_directory(SWAGGER_UI_DIR, filename, max_age=MAX_AGE_S)
