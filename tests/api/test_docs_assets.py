"""/api/docs works offline: its page names no other host and the app serves Swagger UI itself."""

from __future__ import annotations

import re

from flask.testing import FlaskClient

from api.docs_assets import SWAGGER_UI_URL

# Every URL the page loads or calls: attributes, and the spec URL in its inline script.
URL_IN_PAGE = re.compile(r"""(?:src|href)\s*=\s*"([^"]*)"|\burl:\s*"([^"]*)\"""")
CONTENT_TYPES = {
    "swagger-ui.css": "text/css",
    "swagger-ui-bundle.js": "javascript",
    "swagger-ui-standalone-preset.js": "javascript",
}


def test_the_docs_page_loads_everything_from_the_app_itself(client: FlaskClient) -> None:
    page = client.get("/api/docs")
    assert page.status_code == 200
    html = page.text
    urls = [a or b for a, b in URL_IN_PAGE.findall(html)]
    assert "/api/openapi.json" in urls
    assert "http://" not in html and "https://" not in html and "//cdn" not in html
    assets = [u for u in urls if u != "/api/openapi.json"]
    assert sorted(u.removeprefix(SWAGGER_UI_URL) for u in assets) == sorted(CONTENT_TYPES)
    for url in assets:
        assert url.startswith("/api/docs/assets/swagger-ui-4.15.5/"), url
        response = client.get(url)
        assert response.status_code == 200, url
        assert CONTENT_TYPES[url.rsplit("/", 1)[1]] in response.content_type, url
        assert len(response.data) > 100_000, url  # the real bundle, not a stub
        assert "max-age=" in response.headers["Cache-Control"]
        response.close()
    bundle = client.get(SWAGGER_UI_URL + "swagger-ui-bundle.js")
    assert b"SwaggerUIBundle" in bundle.data
    bundle.close()
    # No validator badge (it would load an image from swagger.io).
    assert '"validatorUrl": null' in html


def test_only_the_bundles_files_are_served(client: FlaskClient) -> None:
    for name in ("index.html", "swagger-initializer.js/../index.html", "../__init__.py", "nope.js"):
        response = client.get(SWAGGER_UI_URL + name)
        assert response.status_code == 404, name
        assert response.json["code"] == 404
