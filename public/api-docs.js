// Starts Swagger UI on the API's own OpenAPI document (loaded by api-docs.html).
window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger", deepLinking: true,
                              persistAuthorization: true });
