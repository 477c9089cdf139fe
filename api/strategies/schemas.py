"""The strategy catalogue's response body (``engine.strategies.catalogue()``, typed)."""

from __future__ import annotations

import marshmallow as ma

from api.schemas import OutSchema, one_of

INT_FLOAT = "int and float parameters only; null when unbounded"


class ParamOut(OutSchema):
    """One parameter: a template's, a risk option or a cost."""

    optional = frozenset({"min", "max", "choices"})

    name = ma.fields.String()
    type = ma.fields.String(**one_of(["int", "float", "bool", "choice"]))
    default = ma.fields.Raw(
        allow_none=True,
        metadata={
            "oneOf": [{"type": "number"}, {"type": "boolean"}, {"type": "string"}],
            "description": "of the parameter's type",
        },
    )
    description = ma.fields.String()
    # Raw, typed as numbers: an int parameter's bounds stay integers in the JSON.
    min = ma.fields.Raw(allow_none=True, metadata={"type": "number", "description": INT_FLOAT})
    max = ma.fields.Raw(allow_none=True, metadata={"type": "number", "description": INT_FLOAT})
    choices = ma.fields.List(ma.fields.String(), metadata={"description": "choice only"})
    nullable = ma.fields.Boolean()


class TemplateOut(OutSchema):
    """A strategy template and its parameters."""

    key = ma.fields.String()
    name = ma.fields.String()
    description = ma.fields.String()
    params = ma.fields.List(ma.fields.Nested(ParamOut))
    constraints = ma.fields.List(ma.fields.String(), metadata={"example": ["fast < slow"]})


class StrategyCatalogueOut(OutSchema):
    """What a bot can be built from: templates, risk and cost options, the rule grammar."""

    engine_version = ma.fields.String()
    templates = ma.fields.List(ma.fields.Nested(TemplateOut))
    risk = ma.fields.List(ma.fields.Nested(ParamOut))
    costs = ma.fields.List(ma.fields.Nested(ParamOut))
    rules = ma.fields.Dict(
        keys=ma.fields.String(),
        metadata={"description": "the rule language: sections, conditions, expressions, limits"},
    )
    fills = ma.fields.String(metadata={"description": "the fill model, in a sentence"})
