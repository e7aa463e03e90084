"""WSGI entry point: ``gunicorn wsgi:app``. The only module that creates an app at import."""

from app import create_app

app = create_app()
