"""The web console: a backend-for-frontend over the services' public REST APIs (docs/adr/0014-web-console.md)."""
