// The API reference (/api/docs): Swagger UI, served from this origin, on the app's own OpenAPI
// document. A file, not an inline script: the content-security policy allows no inline script.
"use strict";

window.addEventListener("DOMContentLoaded", function () {
  window.SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    // No call to an outside validator (connect-src 'self'), and a reference only: requests need
    // a DPoP proof or a session's CSRF token that the page cannot make.
    validatorUrl: null,
    supportedSubmitMethods: [],
  });
});
