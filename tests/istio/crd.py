"""Validate custom resources against a CRD's structural schema the way the Kubernetes API server
does with strict field validation (`kubectl apply --validate=strict`, server-side
`fieldValidation=Strict`).

Three layers, as in the API server:
1. OpenAPI v3 keywords (`type`, `enum`, `pattern`, `minLength`, `required`, ...) through
   `jsonschema`, after translating the Kubernetes dialect: `nullable` adds "null" to the type,
   `format: int32` bounds the integer, `x-kubernetes-int-or-string` is integer-or-string.
2. Unknown fields. Kubernetes *prunes* fields a structural schema does not declare (unless
   `x-kubernetes-preserve-unknown-fields`) and by default only warns; strict field validation
   rejects them instead. This validator is strict: a typo such as `failStratgy` must fail a test,
   not silently vanish from the object.
3. `x-kubernetes-list-type: map` key uniqueness and `x-kubernetes-validations` CEL rules, evaluated
   with cel-python and the Kubernetes URL library functions (`isURL`, `url().getScheme()`).

Errors read like the API server's (`spec.url in body should be at least 1 chars long`) so that
Istio's own expected messages match.
"""

import json
from pathlib import Path
from typing import Any

import celpy
import jsonschema
import yaml
from celpy import celtypes

from request_uri import URLError, is_url, parse_request_uri

INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
# ObjectMeta fields a manifest may set; anything else under metadata is an unknown field.
OBJECT_META = {
    "name": {"type": "string"},
    "generateName": {"type": "string"},
    "namespace": {"type": "string"},
    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
    "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    "finalizers": {"type": "array", "items": {"type": "string"}},
    "ownerReferences": {"type": "array", "items": {"type": "object"}},
}
DNS1123_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
_COPIED_KEYWORDS = (
    "enum", "minLength", "maxLength", "pattern", "minimum", "maximum", "exclusiveMinimum",
    "exclusiveMaximum", "multipleOf", "minItems", "maxItems", "uniqueItems", "minProperties",
    "maxProperties", "required",
)


def to_json_schema(node: dict) -> dict:
    """One structural-schema node in the JSON Schema dialect, with strict unknown fields."""
    out: dict[str, Any] = {}
    for key in _COPIED_KEYWORDS:
        if key in node:
            out[key] = node[key]
    nullable = node.get("nullable", False)
    kind = node.get("type")
    if node.get("x-kubernetes-int-or-string"):
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    elif kind:
        out["type"] = [kind, "null"] if nullable else kind
    if nullable and "enum" in out:
        out["enum"] = [*out["enum"], None]
    if kind == "integer" and node.get("format") in ("int32", "int64"):
        low, high = INT32 if node["format"] == "int32" else INT64
        out.setdefault("minimum", low)
        out.setdefault("maximum", high)
    if "properties" in node:
        out["properties"] = {k: to_json_schema(v) for k, v in node["properties"].items()}
    if "items" in node:
        out["items"] = to_json_schema(node["items"])
    extra = node.get("additionalProperties")
    if isinstance(extra, dict):
        out["additionalProperties"] = to_json_schema(extra)
    elif extra is not None:
        out["additionalProperties"] = extra
    elif kind == "object" and not node.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    return out


def _path(parts) -> str:
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _go_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", list: "array", dict: "object"}.get(type(value), type(value).__name__)


def _schema_message(error: jsonschema.ValidationError) -> str:
    """A jsonschema error worded as the API server words it."""
    where = _path(error.absolute_path)
    value, arg = error.instance, error.validator_value
    match error.validator:
        case "type":
            wanted = arg[0] if isinstance(arg, list) else arg
            return f'{where} in body must be of type {wanted}: "{_go_type(value)}"'
        case "minLength":
            return f"{where} in body should be at least {arg} chars long"
        case "maxLength":
            return f"{where} in body may not be longer than {arg}"
        case "pattern":
            return f"{where} in body should match '{arg}'"
        case "enum":
            allowed = ", ".join(json.dumps(v) for v in arg if v is not None)
            return f"{where}: Unsupported value: {json.dumps(value)}: supported values: {allowed}"
        case "minimum":
            return f"{where} in body should be greater than or equal to {arg}"
        case "maximum":
            return f"{where} in body should be less than or equal to {arg}"
        case "maxItems" | "maxProperties":
            return f"{where}: Too many: {len(value)}: must have at most {arg} items"
        case "minItems" | "minProperties":
            return f"{where} in body should have at least {arg} items"
        case "required":
            missing = [k for k in arg if k not in value]
            return "; ".join(f"{_path([*error.absolute_path, k])}: Required value" for k in missing)
        case "additionalProperties":
            known = error.schema.get("properties", {})
            return "; ".join(
                f'unknown field "{_path([*error.absolute_path, k])}"' for k in value if k not in known
            )
        case "anyOf":
            return f"{where} in body must be of type integer or string: \"{_go_type(value)}\""
    return f"{where}: {error.message}"


class _URLValue:
    """What `url(s)` returns in Kubernetes CEL: a parsed URL with getters."""

    def __init__(self, parsed):
        self.parsed = parsed


def _cel_is_url(value) -> celtypes.BoolType:
    return celtypes.BoolType(is_url(str(value)))


def _cel_url(value):
    try:
        return _URLValue(parse_request_uri(str(value)))
    except URLError as err:
        raise celpy.CELEvalError(f"URL parse error during conversion from string: {err}") from err


def _cel_get_scheme(url: _URLValue) -> celtypes.StringType:
    return celtypes.StringType(url.parsed.scheme)


def _cel_get_host(url: _URLValue) -> celtypes.StringType:
    return celtypes.StringType(url.parsed.host)


CEL_FUNCTIONS = {
    "isURL": _cel_is_url,
    "url": _cel_url,
    "getScheme": _cel_get_scheme,
    "getHost": _cel_get_host,
}


class CrdValidator:
    """Validates documents of one CRD version, collecting every error (not just the first)."""

    def __init__(self, crd: dict, version: str | None = None):
        spec = crd["spec"]
        served = [v for v in spec["versions"] if v.get("served")]
        chosen = next(v for v in served if version in (None, v["name"]))
        self.api_version = f"{spec['group']}/{chosen['name']}"
        self.kind = spec["names"]["kind"]
        self.schema = chosen["schema"]["openAPIV3Schema"]
        root = to_json_schema(self.schema)
        root["properties"] = {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {
                "type": "object",
                "properties": OBJECT_META,
                "additionalProperties": False,
                "required": ["name"],
            },
            **root.get("properties", {}),
        }
        root["properties"]["metadata"]["properties"]["name"] = {
            "type": "string", "maxLength": 253, "pattern": DNS1123_SUBDOMAIN,
        }
        # The status subresource is ignored on create/update of the main resource.
        root["properties"].pop("status", None)
        jsonschema.Draft202012Validator.check_schema(root)
        self._openapi = jsonschema.Draft202012Validator(root)
        self._cel = celpy.Environment()
        self._programs: dict[str, Any] = {}

    @classmethod
    def from_file(cls, path: Path) -> "CrdValidator":
        return cls(yaml.safe_load(path.read_text()))

    def errors(self, document: Any) -> list[str]:
        if not isinstance(document, dict):
            return [f"document must be an object, got {_go_type(document)}"]
        found: list[str] = []
        if document.get("apiVersion") != self.api_version or document.get("kind") != self.kind:
            found.append(
                f'no matches for kind "{document.get("kind")}" in version '
                f'"{document.get("apiVersion")}" (this validator knows {self.kind} {self.api_version})'
            )
        document = {k: v for k, v in document.items() if k != "status"}
        for error in sorted(self._openapi.iter_errors(document), key=lambda e: list(e.absolute_path)):
            found.append(_schema_message(error))
        for name, node in self.schema.get("properties", {}).items():
            if name != "status" and name in document:
                self._walk(node, document[name], [name], found)
        return found

    def _walk(self, node: dict, value: Any, path: list, found: list[str]) -> None:
        """List-map keys and CEL rules, on every value whose type matches its schema."""
        if value is None or not _type_matches(node, value):
            return
        if isinstance(value, list):
            item_schema = node.get("items", {})
            if node.get("x-kubernetes-list-type") == "map":
                keys = node.get("x-kubernetes-list-map-keys", [])
                seen = set()
                for i, item in enumerate(value):
                    if not isinstance(item, dict):
                        continue
                    ident = json.dumps({k: item.get(k) for k in keys}, sort_keys=True)
                    if ident in seen:
                        found.append(f"{_path([*path, i])}: Duplicate value: {ident}")
                    seen.add(ident)
            for i, item in enumerate(value):
                self._walk(item_schema, item, [*path, i], found)
        elif isinstance(value, dict):
            for key, child in node.get("properties", {}).items():
                if key in value:
                    self._walk(child, value[key], [*path, key], found)
            extra = node.get("additionalProperties")
            if isinstance(extra, dict):
                for key, child in value.items():
                    self._walk(extra, child, [*path, key], found)
        for rule in node.get("x-kubernetes-validations", []):
            if not self._rule_holds(rule["rule"], value):
                message = rule.get("message") or f"failed rule: {rule['rule']}"
                found.append(f'{_path(path)}: Invalid value: "{_cel_kind(value)}": {message}')

    def _rule_holds(self, rule: str, value: Any) -> bool:
        program = self._programs.get(rule)
        if program is None:
            program = self._cel.program(self._cel.compile(rule), functions=CEL_FUNCTIONS)
            self._programs[rule] = program
        try:
            result = program.evaluate({"self": celpy.json_to_cel(value)})
        except celpy.CELEvalError:
            return False
        return bool(result) and not isinstance(result, celpy.CELEvalError)


def _type_matches(node: dict, value: Any) -> bool:
    kind = node.get("type")
    if kind is None or node.get("x-kubernetes-int-or-string"):
        return True
    return {
        "object": isinstance(value, dict),
        "array": isinstance(value, list),
        "string": isinstance(value, str),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, (int, float)) and not isinstance(value, bool),
        "boolean": isinstance(value, bool),
    }.get(kind, True)


def _cel_kind(value: Any) -> str:
    return "object" if isinstance(value, dict) else _go_type(value)
