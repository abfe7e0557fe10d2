"""Label Studio over its REST API (``requests``; the SDK pins half of Django's world): a project
with the task's classes, frames uploaded as tasks, pre-annotations imported as predictions, and
the finished annotations exported back.

A key is a personal access token (a JWT: exchanged at ``/api/token/refresh`` for the access
token each session uses, Label Studio 1.23's default) or a legacy token (``Token``). A
rectangle is in percent of its image, from the top-left corner; siteml's boxes are
``x1, y1, x2, y2`` in pixels.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

from siteml.core.errors import InvalidInputError, SitemlError

FROM_NAME, TO_NAME = "label", "image"
UPLOAD_BATCH = 25
"""Frames per upload request."""
TIMEOUT_S = 60


class LabelStudioUnavailable(SitemlError):
    """Label Studio did not answer (exit 1: try again later)."""


class LabelStudioRefused(InvalidInputError):
    """Label Studio refused the key or the request (exit 2)."""


def label_config(classes: list[str]) -> str:
    """A project's labelling interface: rectangles of ``classes`` on the image."""
    labels = "".join(f"<Label value={quoteattr(name)}/>" for name in classes)
    return (f'<View><Image name="{TO_NAME}" value="${TO_NAME}"/>'
            f'<RectangleLabels name="{FROM_NAME}" toName="{TO_NAME}">{labels}'
            "</RectangleLabels></View>")


def rectangle(box: list[float], label: str, width: int, height: int,
              score: float | None = None) -> dict[str, Any]:
    """A box in pixels as a Label Studio rectangle result."""
    x1, y1, x2, y2 = box
    found = {"type": "rectanglelabels", "from_name": FROM_NAME, "to_name": TO_NAME,
             "original_width": width, "original_height": height, "image_rotation": 0,
             "value": {"x": 100 * x1 / width, "y": 100 * y1 / height,
                       "width": 100 * (x2 - x1) / width, "height": 100 * (y2 - y1) / height,
                       "rotation": 0, "rectanglelabels": [label]}}
    return {**found, "score": score} if score is not None else found


def box_of(result: dict[str, Any], width: int, height: int) -> tuple[str, list[float]]:
    """A rectangle result's label and box in pixels of a ``width`` x ``height`` image.

    Raises:
        ValueError: not one label on an unrotated rectangle.
    """
    value = result.get("value", {})
    labels = value.get("rectanglelabels") or []
    if result.get("type") != "rectanglelabels" or len(labels) != 1:
        raise ValueError(f"not a rectangle with one label: {json.dumps(value)[:200]}")
    if value.get("rotation"):
        raise ValueError(f"a rotated rectangle ({value['rotation']} degrees)")
    x, y = value["x"] * width / 100, value["y"] * height / 100
    return labels[0], [x, y, x + value["width"] * width / 100, y + value["height"] * height / 100]


_UPLOADED = re.compile(r"^[0-9a-f]{8}-")
"""The prefix Label Studio gives an uploaded file's name."""


class LabelStudio:
    """A Label Studio server at ``url``, reached with ``key``."""

    def __init__(self, url: str, key: str) -> None:
        import requests

        if not key:
            raise LabelStudioRefused("LABEL_STUDIO_API_KEY is not set (Label Studio's account "
                                     "settings give an access token)")
        self.url, self.session = url.rstrip("/"), requests.Session()
        header = f"Token {key}"
        if key.count(".") == 2:  # a personal access token: a JWT refresh token
            access = self._call("POST", "/api/token/refresh", json={"refresh": key})["access"]
            header = f"Bearer {access}"
        self.session.headers["Authorization"] = header
        self._call("GET", "/api/current-user/whoami")

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        """One request; its JSON.

        Raises:
            LabelStudioUnavailable: no answer, or a server error.
            LabelStudioRefused: the key or the request refused (the key never quoted).
        """
        import requests

        try:
            response = self.session.request(method, self.url + path, timeout=TIMEOUT_S,
                                            **kwargs)
        except requests.RequestException as exc:
            raise LabelStudioUnavailable(f"Label Studio at {self.url} does not answer "
                                         f"({type(exc).__name__})") from None
        if response.status_code in (401, 403):
            raise LabelStudioRefused(f"Label Studio at {self.url} refused the key "
                                     "(LABEL_STUDIO_API_KEY)")
        if response.status_code >= 500:
            raise LabelStudioUnavailable(f"Label Studio at {self.url} failed on {method} "
                                         f"{path} ({response.status_code})")
        if response.status_code >= 400:
            raise LabelStudioRefused(f"Label Studio at {self.url} refused {method} {path}: "
                                     f"{response.text[:300]}")
        return response.json() if response.content else None

    def create_project(self, title: str, classes: list[str], description: str) -> int:
        found = self._call("POST", "/api/projects/", json={
            "title": title, "description": description, "label_config": label_config(classes)})
        return int(found["id"])

    def upload(self, project: int, frames: dict[str, Path]) -> None:
        """Each frame as a task of ``project``, under its name."""
        names = list(frames)
        for start in range(0, len(names), UPLOAD_BATCH):
            batch = names[start:start + UPLOAD_BATCH]
            handles = {f"file{i}": (name, frames[name].open("rb"))
                       for i, name in enumerate(batch)}
            try:
                self._call("POST", f"/api/projects/{project}/import",
                           params={"commit_to_project": "true"}, files=handles)
            finally:
                for _, handle in handles.values():
                    handle.close()

    def tasks(self, project: int) -> dict[str, dict[str, Any]]:
        """The project's tasks (annotations and predictions included) by uploaded name."""
        exported = self._call("GET", f"/api/projects/{project}/export",
                              params={"exportType": "JSON", "download_all_tasks": "true"})
        return {_UPLOADED.sub("", task["data"][TO_NAME].rsplit("/", 1)[-1]): task
                for task in exported}

    def import_predictions(self, project: int, predictions: list[dict[str, Any]]) -> None:
        self._call("POST", f"/api/projects/{project}/import/predictions", json=predictions)
