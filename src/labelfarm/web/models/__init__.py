"""Response models of the JSON API: what each route answers, field by field.

They document the OpenAPI document (``/api/v1/openapi.json``) and nothing else: routes
return their JSON themselves, and declare these models with
:func:`labelfarm.web.responses.documented`, so no answer is validated or serialized twice.
Every model forbids fields it does not name (``additionalProperties: false``), so a test
that checks served answers against the document (``tests/test_openapi.py``) notices when a
service's answer and its model drift apart.

Times are what the services give: epoch seconds (``float``) for stored rows, ISO 8601 text
where a service formats them.
"""
