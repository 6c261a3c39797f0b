"""OpenAPI description of our JWT authentication (loaded by AccountsConfig.ready)."""

from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme


class SessionJWTScheme(SimpleJWTScheme):
    target_class = "apps.accounts.authentication.SessionJWTAuthentication"
    name = "jwtAuth"
