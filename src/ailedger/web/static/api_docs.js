// The API's description page: Swagger UI (vendored in static/swagger/, version 5.35.0,
// Apache-2.0) over /openapi.json. "Try it out" runs as the signed-in user and sends the
// session's CSRF token, read from the page's meta tag, on every request.
"use strict";
window.addEventListener("load", function () {
  var meta = document.querySelector('meta[name="csrf-token"]');
  var token = meta ? meta.getAttribute("content") : "";
  window.SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    requestInterceptor: function (request) {
      if (token) {
        request.headers["X-CSRF-Token"] = token;
      }
      return request;
    },
  });
});
