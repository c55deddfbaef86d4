"""Reading a FHIR resource from a request body: JSON, of the resource type the route takes, valid
against HL7's R4 definition (``fhir.resources``' R4B models: R4B left R4's financial module as it
was). A body that is not JSON is a 400; one that is not a valid resource a 422 naming the path of
every element at fault (``Claim.item[0].productOrService``), never the value that was sent.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from fastapi import Depends, Request
from pydantic import ValidationError

from rempart.errors import RempartError, ValidationFailed
from rempart.web.fhir_wire import asks_for_xml

R = TypeVar("R")

# The media types a FHIR body may come as (FHIR R4 §3.1.0.1.6); a form or a file is refused.
BODY_TYPES = ("application/fhir+json", "application/json")
MAX_BODY = 256 * 1024  # a claim with its contained resources is a few kilobytes
# Deeper than any R4 resource we take nests (a claim's item, detail, sub-detail and their codings):
# refused before parsing, so that no nesting reaches the interpreter's recursion limit.
MAX_DEPTH = 32


class FhirBodyUnreadable(RempartError):
    status = 400
    slug = "fhir-body-unreadable"
    title = "The body is not a FHIR JSON resource"


class FhirMediaUnsupported(RempartError):
    status = 415
    slug = "fhir-media-unsupported"
    title = "Send application/fhir+json"


class FhirFormatUnsupported(RempartError):
    status = 406
    slug = "fhir-format-unsupported"
    title = "This server answers application/fhir+json only"


class FhirResourceInvalid(ValidationFailed):
    slug = "fhir-resource-invalid"
    title = "The resource is not valid FHIR R4"


def json_only(request: Request) -> None:
    """Refuse, with a 406 OperationOutcome, a request that asks for XML only."""
    if asks_for_xml(request):
        raise FhirFormatUnsupported("ask for application/fhir+json (_format=json)")


# Every router of the facade takes this dependency.
FHIR_ROUTER_DEPENDENCIES = [Depends(json_only)]


async def fhir_body(request: Request) -> bytes:
    """The request's body, when it says it is FHIR JSON and is of a sensible size."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media not in BODY_TYPES:
        raise FhirMediaUnsupported("send the resource as application/fhir+json")
    body = await request.body()
    if len(body) > MAX_BODY:
        raise FhirBodyUnreadable(f"a resource is at most {MAX_BODY // 1024} KiB")
    return body


def read_resource(body: bytes, model: type[R]) -> R:
    """The body as a resource of ``model``'s type, or the error that says where it is wrong."""
    resource_type = getattr(model, "get_resource_type", lambda: model.__name__)()
    if _depth(body) > MAX_DEPTH:
        raise FhirBodyUnreadable(f"the body nests deeper than {MAX_DEPTH} levels")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise FhirBodyUnreadable("the body is not well-formed UTF-8 JSON") from None
    if not isinstance(data, dict):
        raise FhirBodyUnreadable("a FHIR resource is a JSON object")
    if data.get("resourceType") != resource_type:
        raise FhirResourceInvalid(
            f"this endpoint takes a {resource_type}",
            extra={"errors": [{"field": "resourceType", "reason": f"must be {resource_type}"}]},
        )
    try:
        return model.model_validate(data)  # type: ignore[attr-defined, no-any-return]
    except ValidationError as exc:
        errors = [{"field": fhir_path(resource_type, e["loc"]), "reason": _reason(e)} for e in exc.errors()]
        raise FhirResourceInvalid(f"{len(errors)} element(s) are not valid", extra={"errors": errors}) from None
    except (ValueError, TypeError, KeyError, RecursionError):
        # fhir.resources raises some of its checks outside pydantic's error list (a contained
        # resource of an unknown type is a KeyError).
        raise FhirResourceInvalid(
            "the resource is not valid", extra={"errors": [{"field": resource_type, "reason": "not valid"}]}
        ) from None


def _depth(body: bytes) -> int:
    """How deep the JSON nests, counted on its brackets outside strings, without parsing it."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return deepest


def fhir_path(resource_type: str, location: tuple[Any, ...]) -> str:
    """Pydantic's error location as a FHIRPath: ``("item", 0, "productOrService")`` →
    ``Claim.item[0].productOrService``."""
    path = resource_type
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        elif isinstance(part, str) and not part.startswith(("function-", "model-")) and part != "__root__":
            path += "." + part.removesuffix("__ext")
    return path


def _reason(error: Any) -> str:
    # The kind of error only: pydantic's message can quote the value sent.
    kind = str(error.get("type", "invalid"))
    return {
        "missing": "required",
        "extra_forbidden": "not an element of this resource",
        "value_error": "not a valid value",
    }.get(kind, kind.replace("_", " "))
