// Starts Swagger UI on /docs (a file, not an inline script, so that the page runs under the CSP).
// The schema's URL comes from this script tag's data-openapi-url.
const openapiUrl = document.currentScript.dataset.openapiUrl;

window.addEventListener("DOMContentLoaded", () => {
  window.SwaggerUIBundle({
    url: openapiUrl,
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    deepLinking: true,
    presets: [window.SwaggerUIBundle.presets.apis, window.SwaggerUIBundle.SwaggerUIStandalonePreset],
  });
});
