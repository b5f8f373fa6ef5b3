"""Developer tooling for Advocacy: the embedded dev stack, the demo, the ``advocacy`` command line and
the contract exports (OpenAPI, AsyncAPI, event JSON Schemas). Installed by ``make install``, never
by the production image (``pip install .`` installs the library and the services only)."""
