"""The JSON Schema of scenario files, for editors (e.g. yaml-language-server) and CI linters."""

from __future__ import annotations

from typing import Annotated, Any, Union

from pydantic import Field, TypeAdapter

from siteml.scenario.extends import EXTENDS
from siteml.scenario.types import SCENARIO_TYPES

EXTENDS_SCHEMA = {"type": "string", "description": "A base scenario file (relative to this "
                  "file) deep-merged under this file's keys"}
SITE_ID_SCHEMA = {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,62}$",
                  "description": "Site id: the name of configs/sites/<id>.yaml"}


def scenario_json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of a scenario file, chosen by ``experiment_type``.

    ``site`` accepts the inline mapping or a site id, as the factory does.
    """
    union: Any = Annotated[Union[tuple(SCENARIO_TYPES.values())],  # noqa: UP007 - built at run time
                             Field(discriminator="experiment_type")]
    schema = TypeAdapter(union).json_schema(mode="validation")
    for definition in schema["$defs"].values():
        site = definition.get("properties", {}).get("site")
        if site and "$ref" in site:
            site["anyOf"] = [{"$ref": site.pop("$ref")}, SITE_ID_SCHEMA]
        if "experiment_type" in definition.get("properties", {}):
            definition["properties"][EXTENDS] = EXTENDS_SCHEMA
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "siteml scenario", **schema}
