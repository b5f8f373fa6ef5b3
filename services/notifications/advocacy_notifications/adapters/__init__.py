"""What the use cases stand on: the SMTP sender, the templates, the signed links."""
