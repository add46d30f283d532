"""The REST API (Django REST framework). Mount ``byok.rest.urls`` in your URLconf."""
