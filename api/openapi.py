"""How the OpenAPI document is built from the schemas, so that generated clients are typed.

Rules on top of apispec's marshmallow plugin (each schema's docstring is its description):

- every field of an :class:`~api.schemas.OutSchema` (a response body) is ``required``
  unless the schema names it in ``optional``: the API always sends it, so a generated
  client types it as present, not as ``X | Unset``;
- a nullable nested object stays its schema: ``allOf: [$ref]`` with ``nullable: true``
  (OpenAPI 3.0), where apispec would write ``anyOf: [{type: object, nullable: true},
  $ref]`` and generators would make a plain dict of it; a nullable enum lists null
  among its values, without ``nullable``;
- a partial schema (``BotPatch``) documents no defaults, or a generated client would
  send them and overwrite what the PATCH left out;
- a schema's own ``openapi`` class attribute (``StrategyIn``'s "template or rules") is
  merged into its JSON schema, for rules across fields that the fields cannot state.

Operation ids are not derived here: each view declares its own with
``@blp.doc(operationId=...)`` (tests/api/test_openapi_contract.py checks them).
"""

from __future__ import annotations

import inspect
from typing import Any

import marshmallow as ma
from apispec.ext.marshmallow import MarshmallowPlugin
from apispec.ext.marshmallow.openapi import OpenAPIConverter

from api.schemas import OutSchema


class ContractConverter(OpenAPIConverter):
    """apispec's converter with the rules above."""

    def field2nullable(self, field: ma.fields.Field[Any], ret: dict[str, Any]) -> dict[str, Any]:
        """``allOf: [$ref]`` + ``nullable`` for a nullable nested schema (OpenAPI 3.0)."""
        version = self.openapi_version
        if field.allow_none and (version.major, version.minor) == (3, 0):
            if "$ref" in ret:
                return {"allOf": [{"$ref": ret.pop("$ref")}], "nullable": True}
            if "allOf" in ret:  # a $ref with a description beside it
                return {"nullable": True}
        if None in ret.get("enum", ()):
            # apispec already listed null among the values; ``nullable`` beside it makes
            # generators nest the null twice (a union of three types instead of X | None).
            return {}
        attributes: dict[str, Any] = super().field2nullable(field, ret)
        return attributes

    def field2default(self, field: ma.fields.Field[Any], **kwargs: Any) -> dict[str, Any]:
        """No defaults in a partial schema (a PATCH body): a left-out field stays as it is."""
        if getattr(field.parent, "partial", False) is True:
            return {}
        attributes: dict[str, Any] = super().field2default(field, **kwargs)
        return attributes

    def schema2jsonschema(self, schema: Any) -> dict[str, Any]:
        """The schema's JSON schema; every dumped field of an OutSchema is required."""
        jsonschema: dict[str, Any] = super().schema2jsonschema(schema)  # type: ignore[no-untyped-call]
        cls = schema if isinstance(schema, type) else type(schema)
        doc = cls.__dict__.get("__doc__")  # its own, never a base class's
        if doc and "description" not in jsonschema:
            jsonschema["description"] = inspect.cleandoc(doc)
        jsonschema.update(cls.__dict__.get("openapi", {}))
        if isinstance(schema, OutSchema) or (
            isinstance(schema, type) and issubclass(schema, OutSchema)
        ):
            fields = schema.fields if isinstance(schema, ma.Schema) else schema._declared_fields
            required = set(jsonschema.get("required", []))
            for name, field in fields.items():
                if name not in schema.optional and not field.load_only:
                    required.add(field.data_key or name)
            if required:
                jsonschema["required"] = sorted(required)
        return jsonschema


class ContractPlugin(MarshmallowPlugin):
    """The marshmallow plugin with :class:`ContractConverter`."""

    Converter = ContractConverter
